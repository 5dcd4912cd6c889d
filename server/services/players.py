"""Player tokens, session requests and session end."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from schemas import methods as m
from schemas.errors import Conflict, Forbidden, InvalidParams
from server.db import Generation, Player
from server.services.service import Call, Service, method


@method("CreatePlayerToken")
async def create_player_token(svc: Service, call: Call, p: m.CreatePlayerToken) -> dict:
    token, expires = await _issue_token(svc, call, p.PlayerId, p.TtlSeconds)
    return {"Token": token, "ExpiresAt": expires, "PlayerId": p.PlayerId}


@method("CreateEditorLink")
async def create_editor_link(svc: Service, call: Call, p: m.CreateEditorLink) -> dict:
    """``/creator/#token=…&generation=…``: a URL fragment never reaches a server or its logs."""
    fragment = {}
    if p.GenerationId is not None:
        async with svc.db() as db:
            gen = svc.check_owner(await db.get(Generation, p.GenerationId), call.principal, "generation")
        if gen.player_id != p.PlayerId:
            raise Forbidden("That generation belongs to another player.")
        fragment["generation"] = gen.id
    token, expires = await _issue_token(svc, call, p.PlayerId, p.TtlSeconds)
    path = "/creator/#" + urlencode({"token": token, **fragment})
    return {"Path": path, "Url": svc.config.public_url.rstrip("/") + path if svc.config.public_url else None,
            "ExpiresAt": expires, "PlayerId": p.PlayerId}


async def _issue_token(svc: Service, call: Call, player_id: str, ttl_seconds: int | None) -> tuple[str, float]:
    exp_id = call.principal.experience_id
    now = svc.clock()
    if ttl_seconds is not None and not 1 <= ttl_seconds <= svc.tokens.max_ttl:
        raise InvalidParams(f"'TtlSeconds' must be between 1 and {svc.tokens.max_ttl:.0f}.")
    ttl = float(ttl_seconds) if ttl_seconds else svc.config.token_ttl
    token, expires = svc.tokens.issue(exp_id, player_id, now, ttl)
    try:
        async with svc.db.begin() as db:
            if await db.get(Player, (exp_id, player_id)) is None:
                db.add(Player(experience_id=exp_id, player_id=player_id, first_seen=now))
    except IntegrityError:
        pass  # a concurrent call registered the player first
    return token, expires


@method("RevokePlayerTokens")
async def revoke_player_tokens(svc: Service, call: Call, p: m.RevokePlayerTokens) -> dict:
    exp_id = call.principal.experience_id
    now, closed = await svc.revoke_player_tokens(exp_id, p.PlayerId)
    return {"PlayerId": p.PlayerId, "RevokedAt": now, "ClosedConnections": closed}


@method("RequestAvatarGenerationSessionAsync")
async def request_session(svc: Service, call: Call, p: m.RequestAvatarGenerationSessionAsync) -> dict:
    exp = await svc.experience(call.principal)
    return await svc.sessions.request(exp, p.PlayerId)


@method("CancelSessionRequest")
async def cancel_request(svc: Service, call: Call, p: m.CancelSessionRequest) -> dict:
    return {"Cancelled": await svc.sessions.cancel(call.principal.experience_id, p.RequestId)}


@method("GetSessionRequest")
async def get_request(svc: Service, call: Call, p: m.GetSessionRequest) -> dict:
    return await svc.sessions.status(call.principal.experience_id, p.RequestId)


@method("EndSession")
async def end_session(svc: Service, call: Call, p: m.EndSession) -> dict:
    """Idempotent: ending a session of this experience that already ended (after its
    last 3D generation, say) answers with how it ended."""
    try:
        await svc.active_session(p.SessionId, call.principal)
        await svc.sessions.end(p.SessionId, p.Reason)
    except Conflict:
        ended = await svc.sessions.ended(call.principal.experience_id, p.SessionId)
        if ended is None:
            raise
        return {"SessionId": p.SessionId, "Reason": ended, "AlreadyEnded": True}
    return {"SessionId": p.SessionId, "Reason": p.Reason, "AlreadyEnded": False}
