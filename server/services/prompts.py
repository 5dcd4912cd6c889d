"""Questions the server asks a player's client and waits on.

``PromptSelectAvatarGenerationImageAsync`` waits for a selfie upload and
``PromptCreateAvatarAsync`` for the player's confirmation.  Each pending prompt
is a future keyed by its id and tied to a session or generation; it is
resolved by the client's answer, failed by a decline or by the session ending,
and the waiter applies its own timeout.  The first answer wins.

The futures live in the process that waits.  Scaled out, the answer may reach
another replica: a ``relay`` (the Redis bus) lists open prompts for every replica
and carries answers and session ends to the one that waits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from schemas.errors import AcsError, Conflict
from server.ports import PromptInfo, PromptRelay

__all__ = ["Prompts", "Pending"]


@dataclass(eq=False)
class Pending(PromptInfo):
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _error(outcome: list) -> AcsError:
    _, code, message, status = outcome
    return Conflict(message, code=code) if status == 409 else AcsError(message, code=code, status=status)


class Prompts:
    def __init__(self, relay: PromptRelay | None = None) -> None:
        self._pending: dict[str, Pending] = {}
        self.relay = relay

    async def open(self, prompt_id: str, experience_id: str, player_id: str, *, kind: str,
                   session_id: str | None = None, ttl: float = 3600.0) -> Pending:
        already = Conflict("A selfie prompt is already open for this session.", code="GenerationInProgress")
        for p in self._pending.values():
            if p.session_id and p.session_id == session_id:
                raise already
        pending = Pending(prompt_id, experience_id, player_id, session_id, kind)
        self._pending[prompt_id] = pending
        if self.relay is not None and not await self.relay.claim_prompt(pending, ttl):
            self._pending.pop(prompt_id, None)
            raise already
        return pending

    async def get(self, prompt_id: str, *, kind: str) -> PromptInfo | None:
        p = self._pending.get(prompt_id)
        if p is None and self.relay is not None:
            p = await self.relay.prompt_info(prompt_id)
        return p if p is not None and p.kind == kind else None

    def deliver(self, prompt_id: str, outcome: list) -> bool:
        """Settle a prompt waited on here: ``["ok", value]`` or ``["error", code, message, status]``."""
        p = self._pending.get(prompt_id)
        if p is None or p.future.done():
            return False
        if outcome[0] == "ok":
            value = outcome[1]
            p.future.set_result(tuple(value) if isinstance(value, list) else value)
        else:
            p.future.set_exception(_error(outcome))
        return True

    async def _settle(self, prompt_id: str, outcome: list) -> bool:
        if prompt_id in self._pending:
            return self.deliver(prompt_id, outcome)
        if self.relay is not None:
            return await self.relay.answer_prompt(prompt_id, outcome)
        return False

    async def resolve(self, prompt_id: str, value: Any) -> bool:
        return await self._settle(prompt_id, ["ok", list(value) if isinstance(value, tuple) else value])

    async def fail(self, prompt_id: str, error: AcsError) -> bool:
        return await self._settle(prompt_id, ["error", error.code, error.message, error.status])

    async def discard(self, prompt_id: str) -> None:
        """Forget a prompt nobody will wait for any more."""
        p = self._pending.pop(prompt_id, None)
        if p is not None and self.relay is not None:
            await self.relay.forget_prompt(p)

    async def wait(self, pending: Pending, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            await self.discard(pending.prompt_id)

    def session_ended_here(self, session_id: str, reason: str) -> None:
        for p in list(self._pending.values()):
            if p.session_id == session_id:
                self.deliver(p.prompt_id, ["error", "SessionNotActive", f"The session ended ({reason}).", 409])

    async def session_ended(self, session, reason: str) -> None:
        self.session_ended_here(session.session_id, reason)
        if self.relay is not None:
            await self.relay.session_ended_everywhere(session.session_id, reason)

    def cancel_all(self) -> None:
        for p in self._pending.values():
            if not p.future.done():
                p.future.cancel()
