"""The sans-I/O sync core (meshes/sync.py): unit tests, and a hypothesis property test
in the spirit of h11's ConnectionPair -- one DocumentLog, two Replicas (game server,
game client), an in-memory network that delays, reorders and drops messages, random
disconnects and reconnects -- asserting that every copy converges."""

from __future__ import annotations

import random
from collections import deque

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from meshes import (
    SIDE_CLIENT,
    SIDE_SERVER,
    Avatar,
    DocumentLog,
    InvalidEdit,
    Replica,
    add_triangle_op,
    add_vertex_op,
    apply_ops,
    batch_set_values_op,
    draw_circle_op,
    draw_rectangle_op,
    remove_face_op,
    set_position_op,
    set_property_op,
    set_uv_op,
    set_vertex_bone_weights_op,
    write_pixels_op,
)
from tests.test_ops import tiny_avatar

SIDES = (SIDE_SERVER, SIDE_CLIENT)


def wire(x):
    return msgpack.unpackb(msgpack.packb(x, use_bin_type=True), raw=False)


# --------------------------------------------------------------------------- unit tests


def test_document_log_submit_duplicate_since_and_restore():
    base = tiny_avatar()
    log = DocumentLog(base.copy(), history=3)
    b1 = [set_position_op("Head", 1, (0, 0, 1))]
    r = log.submit("a-1", 0, b1, "server")
    assert (r.version, r.duplicate, log.version) == (1, False, 1) and r.ops == b1
    h1 = log.content_hash()
    assert log.submit("a-1", 0, b1, "server") == (1, b1, True) and log.content_hash() == h1  # not applied twice
    with pytest.raises(InvalidEdit):
        log.submit("a-2", 1, [set_position_op("Head", 1, (0, 0, 2)), remove_face_op("Head", 999)], "server")
    assert log.version == 1 and log.content_hash() == h1
    with pytest.raises(InvalidEdit, match="999"):  # a refused batch id stays refused
        log.submit("a-2", 1, [], "server")
    with pytest.raises(InvalidEdit, match="ahead"):
        log.submit("a-3", 7, [], "server")
    for bad_id in ("", 5, "x" * 200):
        with pytest.raises(InvalidEdit):
            log.submit(bad_id, 0, [], "server")
    for i in range(2, 6):
        log.submit(f"b-{i}", log.version, [draw_rectangle_op("Head", (i, i), (2, 2), (1, 0, 0), 0.5)], "client")
    assert log.version == 5
    assert [v for v, _b, _o in log.since(2)] == [3, 4, 5] and log.since(5) == []
    assert log.since(1) is None and log.since(0) is None  # the history (3) no longer reaches back
    assert log.since(6) is None and log.since(-1) is None  # a version this document never had
    assert log.submit("a-1", 0, b1).duplicate and log.submit("a-1", 0, b1).ops == []  # left the history

    # rebuild from base + persisted log (with a snapshot newer than the first entries)
    entries = [(1, "a-1", "server", b1)] + [(v, b, ops) for v, b, ops in log.since(2)]
    with pytest.raises(InvalidEdit, match="follow"):
        DocumentLog(base.copy()).restore(entries)  # version 2 is missing
    snap, v = log.snapshot()
    again = DocumentLog(snap, v)
    assert again.restore(entries) == 0 and again.submit("b-4", 0, []).duplicate
    full = DocumentLog(base.copy())
    full.restore([(1, "a-1", "server", b1), (2, "b-2", "client", [draw_rectangle_op("Head", (2, 2), (2, 2),
                                                                                    (1, 0, 0), 0.5)])]
                 + [(v, b, ops) for v, b, ops in log.since(2)])
    assert full.version == 5 and full.content_hash() == log.content_hash()
    with pytest.raises(InvalidEdit, match="does not apply"):
        DocumentLog(base.copy()).restore([(1, "z", [remove_face_op("Head", 999)])])


def test_replica_buffers_out_of_order_and_applies_own_batches_on_ack():
    base = tiny_avatar()
    log = DocumentLog(base.copy())
    a = Replica(base.copy(), 0, SIDE_SERVER)
    b = Replica(base.copy(), 0, SIDE_CLIENT)
    assert a.ids.owns(a.ids()) and not b.ids.owns(a.ids())
    ba = a.edit([set_position_op("Head", 2, (0, 0, 3))])
    bb = b.edit([add_vertex_op("Head", b.ids(), (1, 1, 1))])
    bb2 = b.edit([set_property_op("HeadColor", [0, 0, 1])])
    assert ba[0] != bb[0] and bb[1] == 0 and [p[0] for p in b.pending()] == [bb[0], bb2[0]]
    ra = log.submit(*ba, "server")
    rb = log.submit(*bb, "client")
    rb2 = log.submit(*bb2, "client")
    # the client hears its acks before the relay of version 1: buffered until then
    b.acked(bb2[0], rb2.version)
    b.acked(bb[0], rb.version)
    assert b.version == 0 and b.buffered == 2 and not b.pending()
    b.relayed(ra.version, ba[0], wire(ra.ops))
    assert b.version == 3 and b.quiescent and b.content_hash() == log.content_hash()
    # the game server: relays out of order, its ack last; duplicates ignored
    a.relayed(3, bb2[0], rb2.ops)
    a.relayed(2, bb[0], rb.ops)
    a.relayed(3, bb2[0], rb2.ops)
    assert a.version == 0 and a.optimistic().content_hash() != a.content_hash()
    a.acked(ba[0], 1)
    a.acked(ba[0], 1)  # a duplicate ack (resend after reconnect)
    assert a.version == 3 and a.quiescent and a.content_hash() == log.content_hash()


def test_replica_reset_keeps_pending_and_resend_is_not_applied_twice():
    base = tiny_avatar()
    log = DocumentLog(base.copy(), history=1)
    c = Replica(base.copy(), 0, SIDE_CLIENT)
    b1 = c.edit([draw_circle_op("Head", (8, 8), 3, (0, 1, 0), 0.5)])  # blending: applying twice would show
    log.submit(*b1, "client")  # the ack is lost
    b2 = c.edit([set_position_op("Head", 3, (1, 2, 3))])  # never reached the server
    log.submit("s-1", log.version, [set_property_op("HeightScale", 1.05)], "server")
    assert log.since(c.version) is None  # too far behind: snapshot
    c.reset(*log.snapshot())
    assert c.version == 2 and [p[0] for p in c.pending()] == [b1[0], b2[0]]
    for batch_id, base_version, ops in c.pending():
        r = log.submit(batch_id, base_version, wire(ops), "client")
        c.acked(batch_id, r.version)
    assert log.version == 3 and c.quiescent and c.content_hash() == log.content_hash()
    # rejected batches are dropped
    b3 = c.edit([remove_face_op("Head", 12345)])
    with pytest.raises(InvalidEdit):
        log.submit(*b3, "client")
    assert c.rejected(b3[0]) and not c.pending()


# --------------------------------------------------------------------------- the property test


class Net:
    """One DocumentLog, a Replica per side, and the messages in flight between them.

    Uplinks (replica → server) are FIFO (one websocket each); downlinks (server →
    replica) deliver in order or, with ``shuffle``, in any order.  A disconnect loses
    everything in flight both ways; a reconnect replays ``since()`` or a snapshot and
    resends the replica's pending batches."""

    def __init__(self, base: Avatar, history: int, shuffle: bool) -> None:
        self.base = base
        self.log = DocumentLog(base.copy(), history=history)
        self.reps = {s: Replica(base.copy(), 0, s) for s in SIDES}
        self.connected = {s: True for s in SIDES}
        self.up = {s: deque() for s in SIDES}
        self.down = {s: [] for s in SIDES}
        self.shuffle = shuffle
        self.hashes = {0: base.content_hash()}  # the document's hash at every version
        self.accepted: list[tuple[int, str, list]] = []
        self.refused_ids: set[str] = set()

    def edit(self, side: int, ops: list) -> str:
        batch = self.reps[side].edit(ops)
        if self.connected[side]:
            self.up[side].append(("submit", *batch))
        return batch[0]

    def serve(self, side: int) -> None:
        _kind, batch_id, base_version, ops = wire(self.up[side].popleft())
        try:
            r = self.log.submit(batch_id, base_version, ops, origin=str(side))
        except InvalidEdit:
            event("a batch was refused")
            self.refused_ids.add(batch_id)
            self.down[side].append(("reject", batch_id))
            return
        self.down[side].append(("ack", batch_id, r.version))
        if r.duplicate:
            event("a resent batch was answered as a duplicate")
        else:
            self.accepted.append((r.version, batch_id, r.ops))
            self.hashes[r.version] = self.log.content_hash()
            for other in SIDES:
                if other != side and self.connected[other]:
                    self.down[other].append(("relay", r.version, batch_id, r.ops))

    def deliver(self, side: int, pick: int) -> None:
        q = self.down[side]
        msg = q.pop(pick % len(q) if self.shuffle else 0)
        rep = self.reps[side]
        before = rep.version
        if msg[0] == "snapshot":
            rep.reset(msg[1], msg[2])
        else:
            msg = wire(msg)
            if msg[0] == "ack":
                rep.acked(msg[1], msg[2])
            elif msg[0] == "relay":
                rep.relayed(msg[1], msg[2], msg[3])
            else:
                rep.rejected(msg[1])
        if rep.buffered:
            event("a replica buffered an early batch")
        if rep.version != before:  # always consistent: a copy at version v equals the document at v
            assert rep.content_hash() == self.hashes[rep.version]

    def disconnect(self, side: int) -> None:
        self.connected[side] = False
        self.up[side].clear()
        self.down[side].clear()

    def reconnect(self, side: int) -> None:
        self.connected[side] = True
        rep = self.reps[side]
        missed = self.log.since(rep.version)
        if missed is None:
            event("a reconnect needed a snapshot")
            self.down[side].append(("snapshot", *self.log.snapshot()))
        else:
            self.down[side] += [("relay", v, b, ops) for v, b, ops in missed]
        self.up[side] += [("submit", *p) for p in rep.pending()]

    def busy(self) -> bool:
        return any(self.up[s] or self.down[s] for s in SIDES)

    def settle(self, rng: random.Random) -> None:
        for s in SIDES:
            if not self.connected[s]:
                self.reconnect(s)
        while self.busy():
            s = rng.choice([s for s in SIDES if self.up[s] or self.down[s]])
            if self.up[s] and (not self.down[s] or rng.random() < 0.5):
                self.serve(s)
            else:
                self.deliver(s, rng.randrange(1 << 30))


@st.composite
def _coord(draw):
    return draw(st.integers(-40, 40)) / 16


def _pick(draw, seq):
    return seq[draw(st.integers(0, len(seq) - 1))]


def draw_ops(draw, rep: Replica) -> tuple[list, str]:
    """A batch made against the replica's confirmed copy; kind "safe" (creations only,
    must be accepted), "bad" (must be refused) or "any"."""
    av = rep.avatar
    part = _pick(draw, sorted(av.parts))
    mesh = av.parts[part]
    verts = mesh.GetVertices()
    kind = draw(st.sampled_from(["move", "batch", "create", "remove", "uv", "skin", "pixels", "rect", "circle",
                                 "prop", "bad"]))
    p3 = lambda: [draw(_coord()) for _ in range(3)]  # noqa: E731
    if kind == "move":
        return [set_position_op(part, _pick(draw, verts), p3())], "any"
    if kind == "batch":
        vs = draw(st.lists(st.sampled_from(verts), min_size=1, max_size=4, unique=True))
        return [batch_set_values_op(part, vs, [p3() for _ in vs])], "any"
    if kind == "create":
        new = [rep.ids() for _ in range(draw(st.integers(1, 3)))]
        ops = [add_vertex_op(part, v, p3()) for v in new]
        for v in new:
            a, b = draw(st.lists(st.sampled_from(verts), min_size=2, max_size=2, unique=True))
            ops.append(add_triangle_op(part, rep.ids(), [v, a, b]))
        return ops, "safe"
    if kind == "remove":
        faces = mesh.GetFaces()
        return ([remove_face_op(part, _pick(draw, faces))] if faces else [set_position_op(part, verts[0], p3())]), "any"
    if kind == "uv":
        if draw(st.booleans()):
            return [set_uv_op(part, _pick(draw, verts), [draw(st.integers(0, 8)) / 8, 0.5])], "any"
        return [set_uv_op(part, None, [0.25, draw(st.integers(0, 8)) / 8], uv_id=_pick(draw, mesh.GetUVs()))], "any"
    if kind == "skin":
        w = draw(st.integers(0, 4)) / 4
        return [set_vertex_bone_weights_op(part, _pick(draw, verts), [1, 2], [w, 1 - w])], "any"
    img_name = _pick(draw, sorted(av.images))
    W, H = av.images[img_name].Size
    if kind == "pixels":
        w, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        x, y = draw(st.integers(0, W - w)), draw(st.integers(0, H - h))
        return [write_pixels_op(img_name, (x, y), (w, h), draw(st.binary(min_size=w * h * 4, max_size=w * h * 4)))], \
            "any"
    if kind == "rect":
        x, y = draw(st.integers(0, W - 1)), draw(st.integers(0, H - 1))
        color = [draw(st.integers(0, 4)) / 4 for _ in range(3)]
        return [draw_rectangle_op(img_name, (x, y), (draw(st.integers(1, 8)), draw(st.integers(1, 8))), color,
                                  draw(st.sampled_from([0.0, 0.5])), draw(st.sampled_from(["BlendSourceOver",
                                                                                           "Overwrite"])))], "any"
    if kind == "circle":
        return [draw_circle_op(img_name, (draw(st.integers(-2, W + 2)), draw(st.integers(-2, H + 2))),
                               draw(st.integers(1, 5)), [1, draw(st.integers(0, 2)) / 2, 0], 0.25)], "any"
    if kind == "prop":
        which = draw(st.sampled_from(["HeadColor", "LeftLegColor", "WidthScale", "BodyTypeScale", "Accessories"]))
        value = {"HeadColor": [draw(st.integers(0, 4)) / 4, 0.5, 0.5], "LeftLegColor": [0.1, 0.2, 0.3],
                 "WidthScale": draw(st.integers(7, 15)) / 10, "BodyTypeScale": draw(st.integers(0, 4)) / 4,
                 "Accessories": [{"AccessoryType": draw(st.sampled_from(["Hat", "Hair", "Back"])), "AssetId": 7}]}
        return [set_property_op(which, value[which])], "any"
    # invalid batches: each must be refused whole and change nothing
    good = [draw_rectangle_op(img_name, (0, 0), (2, 2), (0, 1, 0), 0.5), set_position_op(part, verts[0], p3())]
    bad = draw(st.sampled_from([
        set_position_op(part, 10**12, (0, 0, 0)),                        # no such vertex
        add_vertex_op(part, verts[-1], (0, 0, 0)),                       # id in use
        add_vertex_op(part, 1, (0, 0, 0)),                               # id handed out by the builder
        set_property_op("Name", "x"),                                    # not settable
        set_property_op("HeightScale", 3.0),                             # out of range
        draw_rectangle_op(img_name, (0, 0), (1, 1), (2, 0, 0), 0.0),     # bad colour
        write_pixels_op(img_name, (0, 0), (2, 2), bytes(15)),            # short buffer
        {"op": "Explode"},
    ]))
    return good[: draw(st.integers(0, 2))] + [bad], "bad"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), history=st.sampled_from([2, 3, 512]), shuffle=st.booleans(), seed=st.integers(0, 2**32))
def test_concurrent_edits_converge(data, history, shuffle, seed):
    net = Net(tiny_avatar(), history, shuffle)
    kinds: dict[str, str] = {}
    created: dict[int, set[int]] = {s: set() for s in SIDES}
    for _ in range(data.draw(st.integers(10, 60), label="steps")):
        side = data.draw(st.sampled_from(SIDES), label="side")
        action = data.draw(st.sampled_from(["edit", "edit", "edit", "serve", "serve", "deliver", "deliver",
                                            "deliver", "disconnect", "reconnect", "reconnect", "resend"]),
                           label="action")
        if action == "edit":
            ops, kind = draw_ops(data.draw, net.reps[side])
            for op in ops:
                if op["op"] == "AddVertex" and kind == "safe":
                    created[side].add(op["VertexId"])
            kinds[net.edit(side, ops)] = kind
        elif action == "serve" and net.up[side]:
            net.serve(side)
        elif action == "deliver" and net.down[side]:
            net.deliver(side, data.draw(st.integers(0, 1 << 16), label="pick"))
        elif action == "disconnect" and net.connected[side]:
            net.disconnect(side)
        elif action == "reconnect" and not net.connected[side]:
            net.reconnect(side)
        elif action == "resend" and net.connected[side]:  # a duplicate send must not apply twice
            net.up[side] += [("submit", *p) for p in net.reps[side].pending()]
    net.settle(random.Random(seed))
    event(f"versions: {'0' if not net.log.version else '1-9' if net.log.version < 10 else '10+'}")

    # quiescence: every copy equals the document
    log = net.log
    for rep in net.reps.values():
        assert rep.quiescent and rep.version == log.version
        assert rep.content_hash() == log.content_hash()
    # ... which is the serial application of each accepted batch exactly once
    ids = [b for _v, b, _ops in net.accepted]
    assert len(ids) == len(set(ids)) == log.version
    ref = net.base.copy()
    for _v, _b, ops in sorted(net.accepted, key=lambda t: t[0]):
        apply_ops(ref, ops)
    assert ref.content_hash() == log.content_hash()
    # creations from both sides never collide and are never refused; invalid batches always are
    assert not created[SIDE_SERVER] & created[SIDE_CLIENT]
    for b, kind in kinds.items():
        if kind == "safe":
            assert b in ids
        elif kind == "bad":
            assert b not in ids and b in net.refused_ids
    live = {v for m in log.avatar.parts.values() for v in m.GetVertices() if v >= 1 << 40}
    assert live == created[SIDE_SERVER] | created[SIDE_CLIENT]
