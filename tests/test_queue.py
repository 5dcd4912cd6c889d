"""SessionQueue (SPEC §4 session rules), driven with explicit times: no loop, no clock."""

import itertools

import pytest

from schemas.errors import Conflict
from server.core.queue import (
    Allowance,
    QueuedRequest,
    SessionEnded,
    SessionQueue,
    SessionStarted,
)


def make_queue(capacity=1, hold=100.0):
    ids = (f"ses{i}" for i in itertools.count(1))
    return SessionQueue(capacity=capacity, new_session_id=lambda: next(ids), default_hold=hold)


def req(rid, exp="A", player=None, at=0.0, allowance=Allowance(), share=1.0):
    return QueuedRequest(rid, exp, player or f"p-{rid}", at, allowance, share)


def test_first_request_starts_at_once_second_waits_until_first_ends():
    q = make_queue(capacity=1)
    [started] = q.request(req("r1"), now=0)
    assert isinstance(started, SessionStarted) and started.session.request_id == "r1"
    assert q.request(req("r2"), now=1) == []
    assert q.wait_time("r2", now=1) > 0
    events = q.end(started.session.session_id, "Exit", now=30)
    assert [type(e) for e in events] == [SessionEnded, SessionStarted]
    assert events[1].session.request_id == "r2"


def test_wait_time_grows_with_position_and_uses_measured_holds():
    q = make_queue(capacity=1, hold=100.0)
    [s1] = q.request(req("r1"), now=0)
    q.request(req("r2"), now=0)
    q.request(req("r3"), now=0)
    assert q.wait_time("r2", 0) == pytest.approx(100.0)
    assert q.wait_time("r3", 0) == pytest.approx(200.0)
    # Sessions measured at 10 s pull the estimate down.
    [_, s2] = q.end(s1.session.session_id, "Exit", now=10)
    assert q.mean_hold == pytest.approx(10.0)
    assert q.wait_time("r3", 10) == pytest.approx(10.0)


def test_fifo_within_experience_and_fair_across_experiences():
    q = make_queue(capacity=2)
    for i in range(5):
        q.request(req(f"a{i}", exp="A"), now=i)
    q.request(req("b0", exp="B"), now=10)
    # A holds both slots; B's request is next in line, ahead of A's backlog.
    assert q.queued()[0] == "b0"
    assert q.queued()[1:] == ["a2", "a3", "a4"]
    ses = next(iter(q.sessions))
    started = [e for e in q.end(ses, "Exit", now=20) if isinstance(e, SessionStarted)]
    assert started[0].session.request_id == "b0"


def test_share_weights_the_fair_order():
    q = make_queue(capacity=1)
    [s] = q.request(req("x", exp="C"), now=0)
    q.request(req("a0", exp="A", share=1.0), now=1)
    q.request(req("a1", exp="A", share=1.0), now=2)
    q.request(req("b0", exp="B", share=3.0), now=3)
    q.request(req("b1", exp="B", share=3.0), now=4)
    # B's larger share lets its second request go before A's second.
    assert q.queued() == ["a0", "b0", "b1", "a1"]


def test_expiry_at_session_time_and_next_deadline():
    q = make_queue(capacity=1)
    [s] = q.request(req("r1", allowance=Allowance(session_time=60)), now=0)
    q.request(req("r2"), now=0)
    assert q.next_deadline() == 60
    assert q.expire(now=59) == []
    ended, started = q.expire(now=60)
    assert ended.reason == "TimeExpired" and started.session.request_id == "r2"


def test_disconnect_grace_then_end():
    q = make_queue()
    [s] = q.request(req("r1"), now=0)
    sid = s.session.session_id
    q.player_disconnected(sid, now=5, grace=30)
    assert q.next_deadline() == 35
    q.player_connected(sid)
    assert q.expire(now=40) == []
    q.player_disconnected(sid, now=50, grace=30)
    [ended] = q.expire(now=80)
    assert ended.reason == "Disconnect"


def test_cancel_removes_from_queue_and_unknown_cancel_is_false():
    q = make_queue()
    q.request(req("r1"), now=0)
    q.request(req("r2"), now=0)
    assert q.cancel("r2") is True
    assert q.queued() == []
    assert q.cancel("r2") is False


def test_same_player_cannot_queue_twice():
    q = make_queue()
    q.request(req("r1", player="p"), now=0)
    with pytest.raises(Conflict) as err:
        q.request(req("r2", player="p"), now=0)
    assert err.value.code == "GenerationInProgress"


def test_quota_reservations_are_exact_idempotent_and_refunds_are_free():
    q = make_queue()
    [s] = q.request(req("r1", allowance=Allowance(allowed_2d=2, allowed_3d=1)), now=0)
    sid = s.session.session_id
    q.reserve(sid, "2d", "job1")
    q.reserve(sid, "2d", "job1")  # a retry of the same job holds one unit
    q.reserve(sid, "2d", "job2")
    with pytest.raises(Conflict) as err:
        q.reserve(sid, "2d", "job3")  # two in flight: a third cannot start
    assert err.value.code == "Allowed2DGenerationsExceeded"
    q.release(sid, "job2")  # refused input: not charged
    q.commit(sid, "job1", now=1)
    q.commit(sid, "job1", now=1)  # committing twice charges once
    assert q.sessions[sid].used_2d == 1
    q.reserve(sid, "2d", "job4")
    q.commit(sid, "job4", now=2)
    with pytest.raises(Conflict):
        q.reserve(sid, "2d", "job5")
    assert q.sessions[sid].used_2d == 2


def test_spending_the_3d_allowance_ends_the_session_with_gen3d():
    q = make_queue()
    [s] = q.request(req("r1"), now=0)
    sid = s.session.session_id
    q.reserve(sid, "3d", "g1")
    [ended] = q.commit(sid, "g1", now=5)
    assert ended.reason == "Gen3D" and sid not in q.sessions


def test_restore_keeps_order_and_counters():
    q = make_queue(capacity=1)
    [s] = q.request(req("r1"), now=0)
    q.request(req("r2"), now=1)
    q.request(req("r3", exp="B"), now=2)
    s.session.used_2d = 3
    q2 = make_queue(capacity=1)
    q2.restore([s.session], [q._requests[r] for r in ("r2", "r3")], [42.0])
    assert q2.fill(now=3) == []
    assert q2.queued() == q.queued()
    assert q2.sessions[s.session.session_id].used_2d == 3
    assert q2.mean_hold == 42.0
