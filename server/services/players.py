"""Player tokens, session requests and session end."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from schemas import methods as m
from schemas.errors import Conflict, InvalidParams
from server.db import Player
from server.services.service import Call, Service, method


@method("CreatePlayerToken")
async def create_player_token(svc: Service, call: Call, p: m.CreatePlayerToken) -> dict:
    exp_id = call.principal.experience_id
    now = svc.clock()
    if p.TtlSeconds is not None and not 1 <= p.TtlSeconds <= svc.tokens.max_ttl:
        raise InvalidParams(f"'TtlSeconds' must be between 1 and {svc.tokens.max_ttl:.0f}.")
    ttl = float(p.TtlSeconds) if p.TtlSeconds else svc.config.token_ttl
    token, expires = svc.tokens.issue(exp_id, p.PlayerId, now, ttl)
    try:
        async with svc.db.begin() as db:
            if await db.get(Player, (exp_id, p.PlayerId)) is None:
                db.add(Player(experience_id=exp_id, player_id=p.PlayerId, first_seen=now))
    except IntegrityError:
        pass  # a concurrent call registered the player first
    return {"Token": token, "ExpiresAt": expires, "PlayerId": p.PlayerId}


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
