"""Questions the server asks a player's client and waits on.

``PromptSelectAvatarGenerationImageAsync`` waits for a selfie upload and
``PromptCreateAvatarAsync`` for the player's confirmation.  Each pending prompt
is a future keyed by its id and tied to a session or generation; it is
resolved by the client's answer, failed by a decline or by the session ending,
and the waiter applies its own timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from schemas.errors import AcsError, Conflict

__all__ = ["Prompts", "Pending"]


@dataclass(eq=False)
class Pending:
    prompt_id: str
    experience_id: str
    player_id: str
    session_id: str | None
    #: "selfie" or "publish": an answer to one kind never resolves the other.
    kind: str
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Prompts:
    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}

    def open(self, prompt_id: str, experience_id: str, player_id: str, *, kind: str,
             session_id: str | None = None) -> Pending:
        for p in self._pending.values():
            if p.session_id and p.session_id == session_id:
                raise Conflict("A selfie prompt is already open for this session.",
                               code="GenerationInProgress")
        pending = Pending(prompt_id, experience_id, player_id, session_id, kind)
        self._pending[prompt_id] = pending
        return pending

    def get(self, prompt_id: str, *, kind: str) -> Pending | None:
        p = self._pending.get(prompt_id)
        return p if p is not None and p.kind == kind else None

    def resolve(self, prompt_id: str, value: Any) -> bool:
        p = self._pending.get(prompt_id)
        if p is None or p.future.done():
            return False
        p.future.set_result(value)
        return True

    def fail(self, prompt_id: str, error: AcsError) -> bool:
        p = self._pending.get(prompt_id)
        if p is None or p.future.done():
            return False
        p.future.set_exception(error)
        return True

    def discard(self, prompt_id: str) -> None:
        """Forget a prompt nobody will wait for any more."""
        self._pending.pop(prompt_id, None)

    async def wait(self, pending: Pending, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            self._pending.pop(pending.prompt_id, None)

    async def session_ended(self, session, reason: str) -> None:
        for p in list(self._pending.values()):
            if p.session_id == session.session_id:
                self.fail(p.prompt_id, Conflict(f"The session ended ({reason}).", code="SessionNotActive"))

    def cancel_all(self) -> None:
        for p in self._pending.values():
            if not p.future.done():
                p.future.cancel()
