"""Player tokens, session requests and session end."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from schemas.errors import InvalidParams

from schemas import methods as m

from ..db import Player
from ..service import Call, Service, method


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
    session = svc.sessions.core.session(p.SessionId)
    svc.check_owner(session, call.principal, "session")
    await svc.sessions.end(p.SessionId, p.Reason)
    return {"SessionId": p.SessionId, "Reason": p.Reason}
