"""The AvatarCreationService SDK: a game server side and a game client side.

Method names are Roblox's (``RequestAvatarGenerationSessionAsync`` ...).
Where Roblox returns a bare id, these return it too; where Roblox yields an
Instance they return the nearest thing here (an :class:`~meshes.EditableImage`
for a preview, an :class:`~client_sim.avatar_copy.AvatarCopy` for a generated
avatar).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable

import aiohttp

from meshes import EditableImage

from .avatar_copy import AvatarCopy
from .connection import Connection, RemoteError

__all__ = ["GameServer", "GameClient", "SessionRequestConnection", "RemoteError"]


def _progress(callback):
    if callback is None:
        return None
    return lambda p: callback({"Progress": p["Progress"], "Stage": p["Stage"]})


class SessionRequestConnection:
    """What RequestAvatarGenerationSessionAsync returns (an RBXScriptConnection)."""

    def __init__(self, server: "GameServer", request_id: str):
        self.server = server
        self.RequestId = request_id

    async def Disconnect(self) -> bool:
        self.server._ready_callbacks.pop(self.RequestId, None)
        result = await self.server.conn.call("CancelSessionRequest", {"RequestId": self.RequestId})
        return result["Cancelled"]


class _Side:
    role = "server"

    def __init__(self, base_url: str, credential: str):
        self.conn = Connection(base_url, credential)
        self.copies: dict[str, AvatarCopy] = {}

    @property
    def base_url(self) -> str:
        """The server this side is connected to (it changes when it reconnects elsewhere)."""
        return self.conn.base_url

    async def connect(self):
        await self.conn.connect()
        return self

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def LoadAvatar2DPreviewAsync(self, preview_id: str) -> EditableImage:
        result = await self.conn.call("LoadAvatar2DPreviewAsync", {"PreviewId": preview_id})
        return EditableImage.from_png(result["Image"])

    async def LoadGeneratedAvatarAsync(self, generation_id: str) -> AvatarCopy:
        # Edits relayed between the server answering and the copy existing are kept
        # and replayed into it, so none is missed.
        early: list[dict] = []
        self.conn.on("EditsApplied", early.append)
        try:
            bundle = await self.conn.call("LoadGeneratedAvatarAsync", {"GenerationId": generation_id})
            copy = AvatarCopy.for_role(self.conn, bundle, self.role)
        finally:
            self.conn.off("EditsApplied", early.append)
        for data in early:
            await copy.receive_relayed(data)
        self.copies[generation_id] = copy
        return copy

    async def reconnect(self, base_url: str | None = None) -> None:
        """Reconnect after a dropped connection and bring every loaded copy up to date.

        ``base_url``: reconnect to another replica of a scaled-out server."""
        await self.conn.reconnect(base_url)
        for copy in self.copies.values():
            await copy.resync()

    async def SetHairstyle(self, copy: AvatarCopy, style: str) -> int:
        """Rebuild the hair in one of ``schemas.methods.HAIR_STYLES``; the server sends the
        edits to every copy (this one too).  Returns once ``copy`` has applied them: the
        document's version then."""
        result = await self.conn.call("SetHairstyle", {"GenerationId": copy.generation_id, "Style": style})
        await copy.wait_version(int(result["Version"]))
        return int(result["Version"])

    async def GetValidationRules(self) -> dict:
        return await self.conn.call("GetValidationRules")


class GameServer(_Side):
    """The game server's side, authenticated with the experience API key."""

    def __init__(self, base_url: str, api_key: str):
        super().__init__(base_url, api_key)
        self._ready_callbacks: dict[str, Callable[[dict], object]] = {}
        self._early: dict[str, dict] = {}
        self.conn.on("SessionReady", self._on_ready)

    def _on_ready(self, info: dict):
        callback = self._ready_callbacks.pop(info["RequestId"], None)
        if callback is None:
            self._early[info["RequestId"]] = info  # ready before the call returned
            return None
        return callback(info)

    async def CreatePlayerToken(self, player_id: str, ttl_seconds: int | None = None) -> str:
        params = {"PlayerId": player_id}
        if ttl_seconds:
            params["TtlSeconds"] = ttl_seconds
        return (await self.conn.call("CreatePlayerToken", params))["Token"]

    async def CreateEditorLink(self, player_id: str, generation_id: str | None = None) -> dict:
        """``{Path, Url, ExpiresAt}``: the creator page as this player (open ``base_url + Path``)."""
        params = {"PlayerId": player_id}
        if generation_id:
            params["GenerationId"] = generation_id
        return await self.conn.call("CreateEditorLink", params)

    async def RequestAvatarGenerationSessionAsync(
        self, player_id: str, callback: Callable[[dict], object]
    ) -> tuple[SessionRequestConnection, float]:
        result = await self.conn.call("RequestAvatarGenerationSessionAsync", {"PlayerId": player_id})
        request_id = result["RequestId"]
        early = self._early.pop(request_id, None)
        if early is not None:
            outcome = callback(early)
            if inspect.isawaitable(outcome):
                await outcome
        else:
            self._ready_callbacks[request_id] = callback
        return SessionRequestConnection(self, request_id), result["waitTime"]

    async def PromptSelectAvatarGenerationImageAsync(self, session_id: str, timeout: float | None = None) -> str:
        params = {"SessionId": session_id}
        if timeout:
            params["TimeoutSeconds"] = timeout
        return (await self.conn.call("PromptSelectAvatarGenerationImageAsync", params))["FileId"]

    async def GenerateAvatar2DPreviewAsync(self, params: dict, progress_callback=None) -> dict:
        """Returns ``{"PreviewId", ...report}`` (the report of SPEC §5)."""
        return await self.conn.call("GenerateAvatar2DPreviewAsync", params, _progress(progress_callback))

    async def GenerateAvatarAsync(self, params: dict, progress_callback=None) -> str:
        result = await self.conn.call("GenerateAvatarAsync", params, _progress(progress_callback))
        return result["GenerationId"]

    async def PromptCreateAvatarAsync(self, token_id: str | None, player_id: str, avatar: AvatarCopy,
                                      name: str | None = None, timeout: float | None = None) -> dict:
        """Returns ``{"Result", "ResultCode", "BundleId"?, "OutfitId"?, "Message"?}``."""
        params = {"PlayerId": player_id, "GenerationId": avatar.generation_id,
                  "ContentHash": avatar.content_hash()}
        for key, value in (("TokenId", token_id), ("Name", name), ("TimeoutSeconds", timeout)):
            if value is not None:
                params[key] = value
        return await self.conn.call("PromptCreateAvatarAsync", params)

    async def ValidateUGCFullBodyAsync(self, generation_id: str) -> tuple[bool, list[str]]:
        result = await self.conn.call("ValidateUGCFullBodyAsync", {"GenerationId": generation_id})
        return result["Ok"], result["FailureReasons"]

    async def EndSession(self, session_id: str, reason: str = "Exit") -> None:
        await self.conn.call("EndSession", {"SessionId": session_id, "Reason": reason})

    async def CreateStyle(self, name: str, images: list[bytes], portraits: bool | None = None) -> str:
        """Fit a custom style from 5–30 example images; returns its ``StyleId`` at once (the
        fit runs on the server: poll :meth:`GetStyle`, or :meth:`WaitForStyle`)."""
        params = {"Name": name, "Images": list(images)}
        if portraits is not None:
            params["Portraits"] = portraits
        return (await self.conn.call("CreateStyle", params))["StyleId"]

    async def GetStyle(self, style_id: str) -> dict:
        """``{StyleId, Name, Status, Progress, Error?, Fitted?, ...}``."""
        return await self.conn.call("GetStyle", {"StyleId": style_id})

    async def ListStyles(self) -> list[dict]:
        return (await self.conn.call("ListStyles"))["Styles"]

    async def DeleteStyle(self, style_id: str) -> None:
        await self.conn.call("DeleteStyle", {"StyleId": style_id})

    async def WaitForStyle(self, style_id: str, timeout: float = 120.0, interval: float = 0.1,
                           progress_callback=None) -> dict:
        """Poll GetStyle until the style is Done or Failed (returned either way); ``progress_callback``
        gets each answer.  Raises ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        async def poll() -> dict:
            while True:
                state = await self.GetStyle(style_id)
                if progress_callback is not None:
                    progress_callback(state)
                if state["Status"] in ("Done", "Failed"):
                    return state
                await asyncio.sleep(interval)

        return await asyncio.wait_for(poll(), timeout)


class GameClient(_Side):
    """The player's game client, authenticated with a player token.

    Args:
        choose_photo: answers a selfie prompt with image bytes, or ``None`` to
            decline (``SelfieConsentDenied``).
        confirm_publish: answers ``PromptCreateAvatar``; True creates the avatar.
    """

    role = "client"

    def __init__(self, base_url: str, token: str, *,
                 choose_photo: Callable[[dict], Awaitable[bytes | None]] | None = None,
                 confirm_publish: Callable[[dict], Awaitable[bool]] | None = None):
        super().__init__(base_url, token)
        self.token = token
        self.choose_photo = choose_photo
        self.confirm_publish = confirm_publish
        self.conn.on("PromptSelectImage", self._on_select_image)
        self.conn.on("PromptCreateAvatar", self._on_create_avatar)

    async def upload(self, file_id: str | None, photo: bytes, session_id: str | None = None) -> dict:
        """POST a selfie; returns the server's JSON (raises RemoteError on refusal)."""
        url = f"{self.base_url}/v1/files/{file_id}" if file_id else f"{self.base_url}/v1/files"
        form = aiohttp.FormData()
        form.add_field("file", photo, filename="selfie", content_type="application/octet-stream")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"}) as http:
            async with http.post(url, data=form, params={"SessionId": session_id} if session_id else None) as r:
                body = await r.json()
        if "error" in body:
            raise RemoteError(body["error"]["code"], body["error"]["message"])
        return body

    async def _on_select_image(self, data: dict) -> None:
        photo = await self.choose_photo(data) if self.choose_photo else None
        if photo is None:
            await self.conn.call("RespondPromptSelectImage", {"FileId": data["FileId"],
                                                              "Reason": "SelfieConsentDenied"})
        else:
            await self.upload(data["FileId"], photo)

    async def _on_create_avatar(self, data: dict) -> None:
        accepted = await self.confirm_publish(data) if self.confirm_publish else False
        copy = self.copies.get(data["GenerationId"])
        params = {"PromptId": data["PromptId"], "Accepted": bool(accepted)}
        if copy is not None:
            params["ContentHash"] = copy.content_hash()
        await self.conn.call("RespondPromptCreateAvatar", params)
