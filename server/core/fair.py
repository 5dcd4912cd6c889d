"""Fair sharing of the generation workers, sans-I/O.

Every job waits in :class:`FairQueue` under an *owner*: a session (its previews
and 3D build), an experience's batch, a publish.  Free workers go round-robin over
the owners with jobs waiting, FIFO within an owner, so a 50-photo batch is one
owner among many and another experience's preview waits for at most one job per
owner ahead of it, not for the whole batch.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, Hashable, TypeVar

__all__ = ["FairQueue"]

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._queues: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def push(self, owner: Hashable, item: T) -> None:
        self._queues.setdefault(owner, deque()).append(item)
        self._len += 1

    def pop(self) -> T:
        """The next item: the head of the owner whose turn it is (that owner goes last)."""
        owner, queue = self._queues.popitem(last=False)
        item = queue.popleft()
        if queue:
            self._queues[owner] = queue
        self._len -= 1
        return item

    def remove(self, owner: Hashable, item: T) -> bool:
        """Withdraw a waiting item (its caller gave up); False if it is not waiting."""
        queue = self._queues.get(owner)
        if queue is None or item not in queue:
            return False
        queue.remove(item)
        if not queue:
            del self._queues[owner]
        self._len -= 1
        return True
