"""The sans-I/O sync core: one authoritative document, any number of replicas.

No sockets, no clock, no asyncio: the transport (``server/services/documents.py``, the SDK)
moves the values these classes return and feeds in what arrives.

Model
-----
* :class:`DocumentLog` (server) holds the authoritative avatar.  Every batch a
  copy submits is validated and applied atomically (:func:`meshes.ops.apply_ops`)
  and gets the next **version** (1, 2, 3, ...); the server acks the sender with
  that version and relays ``(version, batch_id, ops)`` to the other copies.  A
  refused batch (:class:`InvalidEdit`) changes nothing and gets no version.
  Batches are identified by a ``batch_id`` chosen by the sender: submitting a
  known id again (a resend after a reconnect) returns the original version with
  ``duplicate=True`` and is **not** applied again; a resent *refused* batch id is
  refused again with the same error (the outcome of a batch id is final).
* :class:`Replica` (game server / game client) holds a *confirmed* copy: the
  document at ``replica.version``.  Local edits (:meth:`Replica.edit`) stay
  *pending* until acked; the confirmed copy only ever applies batches in version
  order (own batches when their version is acked, others' when relayed), buffering
  whatever arrives early.  So every copy executes exactly the server's serial
  order, and **after quiescence every replica and the document have equal
  :meth:`Avatar.content_hash` values** -- whatever the interleaving, delays,
  reordering, loss by disconnect or duplicates.  (Conflicts resolve by that order:
  a later SetPosition wins; a batch whose op became invalid -- a RemoveFace of a
  face the other side removed first -- is refused whole and its sender drops it.)
  :meth:`Replica.optimistic` gives the confirmed copy plus the pending edits, for
  display.

Reconnect (what the transport does)
-----------------------------------
1. The replica says ``hello(version=replica.version)``.
2. The server answers with ``log.since(version)`` as relays -- *including the
   replica's own batches* (their acks may have been lost) -- or, when that is
   ``None`` (history too short, or a version the document never had), with a
   snapshot ``log.snapshot()`` that the replica takes with :meth:`Replica.reset`.
3. The replica resends :meth:`Replica.pending` in order; duplicates are acked with
   their original version and not applied twice (:meth:`DocumentLog.submit`).
   Messages of steps 2 and 3 may arrive in any order.

Ids
---
Ids that two copies create concurrently never collide because the creator picks
them from its own range: :class:`IdAllocator` ``(side)`` hands out
``side << 40 | n`` (n = 1, 2, ...).  Side 0 is the builder (the meshes' own
counters, ids below 2**40), :data:`SIDE_SERVER` = 1 the game server,
:data:`SIDE_CLIENT` = 2 the game client, :data:`SIDE_SERVICE` = 3 the server's own edits (a
hairstyle change).  An allocator never repeats an id; a
replica keeps its allocator across reconnects and snapshots, and a fresh one
(:meth:`IdAllocator.resume`) starts above every id of its side in the avatar.
Normal / UV / colour ids made by ``AddTriangle`` come from the meshes' counters
in version order, so a copy learns them only from its confirmed avatar.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from typing import Iterable, NamedTuple

from .avatar import Avatar
from .limits import EXPLICIT_ID_BASE, InvalidEdit
from .ops import apply_ops

__all__ = [
    "ID_SHIFT",
    "SIDE_BUILDER",
    "SIDE_SERVER",
    "SIDE_CLIENT",
    "SIDE_SERVICE",
    "IdAllocator",
    "side_of",
    "DocumentLog",
    "LogEntry",
    "Submitted",
    "Replica",
    "ReplicaDiverged",
]

ID_SHIFT = 40
assert EXPLICIT_ID_BASE == 1 << ID_SHIFT
SIDE_BUILDER = 0
SIDE_SERVER = 1
SIDE_CLIENT = 2
SIDE_SERVICE = 3
_MAX_SIDE = (1 << (63 - ID_SHIFT)) - 1
_MAX_BATCH_ID = 128


class IdAllocator:
    """Creator-chosen vertex / face ids for one side: ``side << 40 | n``, n = 1, 2, ...

    ``side`` 1 (game server) or 2 (game client); any 1..2**23-1 works, 0 is the
    builder's and refused.  The same counter serves vertices and faces of every
    part (ids only need to be unique per table; sharing one counter keeps it simple)."""

    __slots__ = ("side", "_next")

    def __init__(self, side: int, start: int = 1) -> None:
        if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= _MAX_SIDE:
            raise ValueError(f"side must be 1..{_MAX_SIDE} (0 is the builder's)")
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < 1 << ID_SHIFT:
            raise ValueError("start must be 1..2**40-1")
        self.side = side
        self._next = start

    @classmethod
    def resume(cls, side: int, avatar: Avatar) -> "IdAllocator":
        """An allocator for ``side`` starting above every vertex and face id of that
        side in ``avatar`` (for a copy that lost its allocator)."""
        top = 0
        for mesh in avatar.parts.values():
            for ids in (mesh.vertex_ids, mesh.face_ids):
                mine = ids[(ids >> ID_SHIFT) == side]
                if mine.size:
                    top = max(top, int(mine.max()) & ((1 << ID_SHIFT) - 1))
        return cls(side, top + 1)

    def next(self) -> int:
        n = self._next
        if n >= 1 << ID_SHIFT:
            raise OverflowError("id range exhausted")
        self._next = n + 1
        return self.side << ID_SHIFT | n

    __call__ = next

    def owns(self, i: int) -> bool:
        return side_of(i) == self.side

    def __repr__(self) -> str:
        return f"IdAllocator(side={self.side}, next={self._next})"


def side_of(i: int) -> int:
    """The side that created id ``i`` (0: the builder)."""
    return int(i) >> ID_SHIFT


class LogEntry(NamedTuple):
    version: int
    batch_id: str
    origin: str
    ops: list


class Submitted(NamedTuple):
    """:meth:`DocumentLog.submit`'s answer.  ``ops`` is what to relay ([] for a
    duplicate whose batch left the history -- a duplicate is never relayed again)."""

    version: int
    ops: list
    duplicate: bool


def _check_batch_id(batch_id: object) -> str:
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= _MAX_BATCH_ID:
        raise InvalidEdit(f"batch_id must be a string of 1..{_MAX_BATCH_ID} characters")
    return batch_id


def _check_version(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidEdit(f"{what} must be a non-negative integer")
    return v


def _check_ops(ops: object) -> list:
    if not isinstance(ops, (list, tuple)):
        raise InvalidEdit("ops must be a list of op dicts")
    return list(ops)


class DocumentLog:
    """The authoritative document: avatar + version + bounded op history.

    ``history``: how many recent batches :meth:`since` can replay (older readers get
    ``None`` → snapshot).  ``dedup``: how many recent batch ids are remembered to
    answer resends (default ``max(64 * history, 65536)``; a resend older than that
    would be applied again, so keep it well above any reconnect backlog)."""

    def __init__(self, avatar: Avatar, version: int = 0, *, history: int = 512, dedup: int | None = None) -> None:
        if history < 1:
            raise ValueError("history must be ≥ 1")
        self.avatar = avatar
        self.version = _check_version(version, "version")
        self.history: deque[LogEntry] = deque(maxlen=history)
        #: batch_id → its version, or the InvalidEdit it was refused with
        self._seen: OrderedDict[str, int | InvalidEdit] = OrderedDict()
        self._dedup = dedup if dedup is not None else max(64 * history, 65536)

    # ------------------------------------------------------------------ writing

    def submit(self, batch_id: str, base_version: int, ops: list, origin: str = "") -> Submitted:
        """Validate and apply one batch atomically; it becomes ``version + 1``.

        ``base_version`` (the sender's confirmed version when it made the edit) must
        not be ahead of the document; ops apply to the current state (server order).
        A known ``batch_id`` returns its original version, ``duplicate=True``,
        nothing applied.  Raises :class:`InvalidEdit` (nothing changed, no version
        used) for a malformed or invalid batch -- and the same error again for a
        resend of a refused batch id: the outcome of a batch id is final, so a
        replica that dropped a refused batch never sees it accepted later.  (A
        refusal of the ``batch_id`` / ``base_version`` themselves is not remembered.)"""
        _check_batch_id(batch_id)
        if batch_id in self._seen:
            v = self._seen[batch_id]
            if isinstance(v, InvalidEdit):  # the outcome of a batch id is final
                raise type(v)(v.message, code=v.code)
            entry = self._entry(v)
            return Submitted(v, entry.ops if entry is not None and entry.batch_id == batch_id else [], True)
        base = _check_version(base_version, "base_version")
        if base > self.version:
            raise InvalidEdit(f"base_version {base} is ahead of the document (version {self.version})")
        try:
            ops = _check_ops(ops)
            apply_ops(self.avatar, ops)  # raises InvalidEdit and changes nothing
        except InvalidEdit as e:
            self._remember(batch_id, e)
            raise
        return Submitted(self._record(batch_id, str(origin), ops), ops, False)

    def _record(self, batch_id: str, origin: str, ops: list) -> int:
        self.version += 1
        self.history.append(LogEntry(self.version, batch_id, origin, ops))
        self._remember(batch_id, self.version)
        return self.version

    def _remember(self, batch_id: str, version: int | InvalidEdit) -> None:
        self._seen[batch_id] = version
        while len(self._seen) > self._dedup:
            self._seen.popitem(last=False)

    def restore(self, entries: Iterable) -> int:
        """Replay persisted batches onto the base avatar this log was created with.

        ``entries``: ordered :class:`LogEntry` / ``(version, batch_id, origin, ops)``
        / ``(version, batch_id, ops)``.  Entries at or below :attr:`version` (already
        in a newer snapshot) only register their batch ids; the rest must continue
        the versions without a gap and apply cleanly (else :class:`InvalidEdit`: a
        corrupt log).  Returns how many batches were applied."""
        applied = 0
        for e in entries:
            if len(e) == 4:
                v, batch_id, origin, ops = e
            elif len(e) == 3:
                (v, batch_id, ops), origin = e, ""
            else:
                raise InvalidEdit("a log entry is (version, batch_id, [origin,] ops)")
            v = _check_version(v, "version")
            _check_batch_id(batch_id)
            if v <= self.version:
                self._remember(batch_id, v)
                continue
            if v != self.version + 1:
                raise InvalidEdit(f"log entry {v} does not follow version {self.version}")
            ops = _check_ops(ops)
            try:
                apply_ops(self.avatar, ops)
            except InvalidEdit as err:
                raise InvalidEdit(f"log entry {v} ({batch_id}) does not apply: {err.message}") from None
            self._record(batch_id, str(origin), ops)
            applied += 1
        return applied

    # ------------------------------------------------------------------ reading

    def _entry(self, version: int) -> LogEntry | None:
        if not self.history:
            return None
        i = version - self.history[0].version
        return self.history[i] if 0 <= i < len(self.history) else None

    def since(self, version: int) -> list[tuple[int, str, list]] | None:
        """``[(version, batch_id, ops), ...]`` after ``version`` in order; ``[]`` when
        up to date; ``None`` when the history no longer reaches back that far or
        ``version`` is not one this document had (→ send :meth:`snapshot`)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0 or version > self.version:
            return None
        if version == self.version:
            return []
        first = self.history[0].version if self.history else self.version + 1
        if version + 1 < first:
            return None
        return [(e.version, e.batch_id, e.ops) for e in list(self.history)[version + 1 - first:]]

    def snapshot(self) -> tuple[Avatar, int]:
        """(an independent copy of the avatar, its version) for :meth:`Replica.reset`."""
        return self.avatar.copy(), self.version

    def content_hash(self) -> str:
        return self.avatar.content_hash()

    def __repr__(self) -> str:
        return f"DocumentLog(version={self.version}, history={len(self.history)})"


class ReplicaDiverged(InvalidEdit):
    """A batch the server applied does not apply to this replica's confirmed copy:
    the copy is corrupt (never happens with equal starting states); take a snapshot."""

    default_code = "ReplicaDiverged"


class Replica:
    """A copy of the document on one side (see the module docstring).

    ``avatar`` is the confirmed copy at ``version`` (taken over, not copied).
    Batch ids are ``f"{side}-{token}-{n}"``: ``token`` random per replica, so
    two replicas (or one restarted) never reuse an id."""

    def __init__(self, avatar: Avatar, version: int, side: int, *, token: str | None = None,
                 ids: IdAllocator | None = None) -> None:
        self.avatar = avatar
        self.version = _check_version(version, "version")
        self.side = side
        self.ids = ids if ids is not None else IdAllocator.resume(side, avatar)
        self.token = token if token is not None else secrets.token_hex(6)
        self._n = 0
        #: batch_id → (base_version, ops), unacknowledged, in edit order
        self._pending: OrderedDict[str, tuple[int, list]] = OrderedDict()
        #: own batches acked but not applied yet: batch_id → (version, ops)
        self._acked: dict[str, tuple[int, list]] = {}
        #: version → (batch_id, ops) waiting for the versions before it
        self._buffer: dict[int, tuple[str, list]] = {}

    # ------------------------------------------------------------------ local edits

    def edit(self, ops: list) -> tuple[str, int, list]:
        """Record a local batch as pending; returns ``(batch_id, base_version, ops)``
        to send.  Not applied to the confirmed copy until its version arrives."""
        ops = _check_ops(ops)
        self._n += 1
        batch_id = f"{self.side}-{self.token}-{self._n}"
        self._pending[batch_id] = (self.version, ops)
        return batch_id, self.version, ops

    def pending(self) -> list[tuple[str, int, list]]:
        """Unacknowledged batches ``(batch_id, base_version, ops)`` in edit order (resend
        them after a reconnect)."""
        return [(b, base, ops) for b, (base, ops) in self._pending.items()]

    def rejected(self, batch_id: str) -> bool:
        """The server refused this batch: drop it.  True when it was pending."""
        return self._pending.pop(batch_id, None) is not None

    # ------------------------------------------------------------------ from the server

    def acked(self, batch_id: str, version: int) -> None:
        """The server ordered our batch as ``version`` (also for a duplicate resend)."""
        version = _check_version(version, "version")
        if version <= self.version:  # already in the confirmed copy (relay or snapshot)
            self._pending.pop(batch_id, None)
            self._acked.pop(batch_id, None)
            return
        item = self._pending.pop(batch_id, None)
        if item is None:
            if batch_id in self._acked:
                return  # a second ack of a batch already waiting
            raise ValueError(f"ack for unknown batch {batch_id!r}")
        self._acked[batch_id] = (version, item[1])
        self._buffer.setdefault(version, (batch_id, item[1]))
        self._drain()

    def relayed(self, version: int, batch_id: str, ops: list) -> None:
        """A batch of the log (anyone's, own ones included on catch-up)."""
        version = _check_version(version, "version")
        if version <= self.version:
            return
        self._buffer[version] = (batch_id, ops)
        self._drain()

    def reset(self, avatar: Avatar, version: int) -> None:
        """Take a snapshot (``avatar`` is taken over).  Pending batches stay pending
        (resend them; the server answers those it has as duplicates); buffered
        batches newer than the snapshot are kept."""
        self.avatar = avatar
        self.version = _check_version(version, "version")
        self._buffer = {v: b for v, b in self._buffer.items() if v > version}
        self._acked = {b: (v, ops) for b, (v, ops) in self._acked.items() if v > version}
        self._drain()

    def _drain(self) -> None:
        while self.version + 1 in self._buffer:
            batch_id, ops = self._buffer.pop(self.version + 1)
            try:
                apply_ops(self.avatar, ops)
            except InvalidEdit as e:
                raise ReplicaDiverged(f"version {self.version + 1} ({batch_id}) does not apply here: "
                                      f"{e.message}; take a snapshot") from None
            self.version += 1
            self._pending.pop(batch_id, None)
            self._acked.pop(batch_id, None)

    # ------------------------------------------------------------------ state

    @property
    def quiescent(self) -> bool:
        """Nothing pending, nothing acked-but-unapplied, nothing buffered."""
        return not (self._pending or self._acked or self._buffer)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def content_hash(self) -> str:
        """Hash of the confirmed copy."""
        return self.avatar.content_hash()

    def optimistic(self) -> Avatar:
        """A copy of the confirmed avatar with the acked-but-unapplied and pending
        batches applied in order (a batch that does not apply is skipped) -- what
        the user sees before the server answers."""
        view = self.avatar.copy()
        own = sorted(self._acked.values(), key=lambda t: t[0])
        for ops in [ops for _v, ops in own] + [ops for _b, (_base, ops) in self._pending.items()]:
            try:
                apply_ops(view, ops)
            except InvalidEdit:
                pass
        return view

    def __repr__(self) -> str:
        return (f"Replica(side={self.side}, version={self.version}, pending={len(self._pending)}, "
                f"buffered={len(self._buffer)})")
