"""Every RPC method of SPEC §4: its name, who may call it and its parameters.

The table :data:`METHODS` is the single source of truth used by the server's
dispatcher, the HTTP and websocket transports, the SDK and the JSON Schema
export.  Roles: ``"server"`` is a game server holding an experience API key,
``"client"`` a game client holding a player token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MethodSpec", "METHODS", "END_REASONS", "PROMPT_CREATE_AVATAR_RESULT", "HAIR_STYLES", "MAX_SEED",
           "PREVIEW_STYLES", "STYLE_ID_PREFIX"]

#: The built-in hairstyles (generation.avatar.hair.STYLES, checked equal by the tests).
HAIR_STYLES = ("buzz", "short_crop", "side_part", "bob", "long_straight", "curly_volume", "bun", "ponytail")

#: The built-in preview styles (generation.stylize.STYLES, checked equal by the tests); a
#: custom style's id (CreateStyle) starts with STYLE_ID_PREFIX.
PREVIEW_STYLES = ("game_avatar", "corporate_headshot", "anime_character", "editorial_portrait")
STYLE_ID_PREFIX = "style_"

#: Largest ``Seed`` a generation method accepts (seeds are 0..2^31-1).
MAX_SEED = 2**31 - 1

#: Why a session ended (Roblox's EndSessionReason plus Disconnect).
END_REASONS = ("Exit", "Gen3D", "TimeExpired", "EquipModel", "Disconnect")

#: Enum.PromptCreateAvatarResult, names and values as Roblox documents them.
PROMPT_CREATE_AVATAR_RESULT = {
    "Success": 1,
    "PermissionDenied": 2,
    "Timeout": 3,
    "UploadFailed": 4,
    "NoUserInput": 5,
    "InvalidHumanoidDescription": 6,
    "UGCValidationFailed": 7,
    "ModeratedName": 8,
    "MaxOutfits": 9,
    "PurchaseFailure": 10,
    "UnknownFailure": 11,
    "TokenInvalid": 12,
}


def _f(doc: str, **meta):
    return field(metadata={"doc": doc, **meta})


def _opt(doc: str, **meta):
    return field(default=None, metadata={"doc": doc, **meta})


@dataclass(frozen=True, slots=True)
class CreatePlayerToken:
    """Issue a short-lived signed token a game client authenticates with."""

    PlayerId: str = _f("The player's id in the experience.", max_length=128)
    TtlSeconds: int | None = _opt("Token lifetime in seconds (default from config, at most 86400).")


@dataclass(frozen=True, slots=True)
class CreateEditorLink:
    """A link that opens the creator page as the player (its token travels in the URL fragment)."""

    PlayerId: str = _f("The player's id in the experience.", max_length=128)
    GenerationId: str | None = _opt("Open this generation's avatar; without it the page follows the session.")
    TtlSeconds: int | None = _opt("Token lifetime in seconds (default from config, at most 86400).")


@dataclass(frozen=True, slots=True)
class RevokePlayerTokens:
    """Refuse every token issued to a player so far and close its open sockets."""

    PlayerId: str = _f("The player's id in the experience.", max_length=128)


@dataclass(frozen=True, slots=True)
class RequestAvatarGenerationSessionAsync:
    """Queue a generation session for a player; SessionReady is pushed later."""

    PlayerId: str = _f("The player the session is for.", max_length=128)


@dataclass(frozen=True, slots=True)
class CancelSessionRequest:
    """Withdraw a queued request (RBXScriptConnection:Disconnect)."""

    RequestId: str = _f("Id returned by RequestAvatarGenerationSessionAsync.")


@dataclass(frozen=True, slots=True)
class GetSessionRequest:
    """State of a session request: Queued (with waitTime), Active, Ended, Cancelled."""

    RequestId: str = _f("Id returned by RequestAvatarGenerationSessionAsync.")


@dataclass(frozen=True, slots=True)
class PromptSelectAvatarGenerationImageAsync:
    """Ask the player's client for a selfie; returns its FileId once uploaded."""

    SessionId: str = _f("An active session.")
    TimeoutSeconds: float | None = _opt("How long to wait for the upload (default 120).")


@dataclass(frozen=True, slots=True)
class RespondPromptSelectImage:
    """The client declines a selfie prompt (accepting is done by uploading)."""

    FileId: str = _f("FileId from the PromptSelectImage event.")
    Reason: str | None = _opt("SelfieConsentDenied or MediaPermissionsDenied.", max_length=64)


@dataclass(frozen=True, slots=True)
class GenerateAvatar2DPreviewAsync:
    """Make a 2D stylised preview from an uploaded selfie."""

    SessionId: str = _f("An active session.")
    FileId: str = _f("An uploaded selfie of this session.")
    TextPrompt: str | None = _opt("Optional prompt, at most 500 characters.", max_length=10_000)
    Style: str | None = _opt("Optional style: a built-in name (game_avatar by default) or a StyleId of this "
                             "experience's custom styles (CreateStyle).", max_length=64)
    HighRes: bool | None = _opt("1200 px instead of 800 px.")
    Palette: list | None = _opt("Background colours as [[r, g, b], ...] (0..255).")
    Seed: int | None = _opt("Seed of the preview's random choices (0..2^31-1): the same photo, prompt, style and "
                            "seed give a byte-identical PNG in any session.", minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True, slots=True)
class GenerateAvatar2DPreviewBatch:
    """Previews for up to 50 photos in one call, same style; no session needed."""

    Photos: list = _f("Photo bytes (base64 strings over HTTP JSON), at most 50.")
    TextPrompt: str | None = _opt("Optional prompt, at most 500 characters.", max_length=10_000)
    Style: str | None = _opt("Optional style: a built-in name (game_avatar by default) or a StyleId of this "
                             "experience's custom styles (CreateStyle).", max_length=64)
    HighRes: bool | None = _opt("1200 px instead of 800 px.")
    Palette: list | None = _opt("Background colours as [[r, g, b], ...] (0..255).")


@dataclass(frozen=True, slots=True)
class LoadAvatar2DPreviewAsync:
    """Fetch a preview's PNG (an EditableImage on the client)."""

    PreviewId: str = _f("Id returned by GenerateAvatar2DPreviewAsync.")


@dataclass(frozen=True, slots=True)
class GenerateAvatarAsync:
    """Build the rigged 3D avatar from a chosen preview."""

    SessionId: str = _f("An active session.")
    PreviewId: str = _f("A preview of this session.")
    Seed: int | None = _opt("Seed of the build's random choices (0..2^31-1; default: the preview's Seed); the same "
                            "preview and seed give a byte-identical glb.", minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True, slots=True)
class LoadGeneratedAvatarAsync:
    """Load the avatar bundle and join its shared edit document."""

    GenerationId: str = _f("Id returned by GenerateAvatarAsync.")


@dataclass(frozen=True, slots=True)
class ApplyEdits:
    """Apply EditableMesh / EditableImage ops to the shared edit document."""

    GenerationId: str = _f("The document's generation.")
    BaseVersion: int = _f("Document version the ops were made against.")
    Ops: list = _f("Edit ops (see meshes.ops).")
    BatchId: str | None = _opt("The sender's id for this batch; a resend with the same id is not applied twice.",
                               max_length=128)


@dataclass(frozen=True, slots=True)
class SyncDocument:
    """Catch up after a reconnect: the batches after Version, or a snapshot."""

    GenerationId: str = _f("The document's generation.")
    Version: int = _f("The last version this copy applied.")
    Snapshot: bool | None = _opt("Send the whole document, not the batches (a copy that cannot apply some op).")


@dataclass(frozen=True, slots=True)
class SetHairstyle:
    """Rebuild the hair accessory in a built-in style; every copy receives it as edits."""

    GenerationId: str = _f("The document's generation.")
    Style: str = _f("One of " + ", ".join(HAIR_STYLES) + ".", max_length=32)


@dataclass(frozen=True, slots=True)
class PromptCreateAvatarAsync:
    """Publish the edited avatar after the player confirms."""

    PlayerId: str = _f("The player publishing.", max_length=128)
    GenerationId: str = _f("The edited generation.")
    ContentHash: str = _f("Content hash of the game server's copy (checked against the server's).",
                          max_length=128)
    TokenId: str | None = _opt("Avatar creation token of the experience.", max_length=256)
    Name: str | None = _opt("Display name of the published avatar.", max_length=50)
    TimeoutSeconds: float | None = _opt("How long to wait for the player (default 60).")


@dataclass(frozen=True, slots=True)
class RespondPromptCreateAvatar:
    """The client's answer to a PromptCreateAvatar event."""

    PromptId: str = _f("PromptId from the PromptCreateAvatar event.")
    Accepted: bool = _f("True to create the avatar, false to decline.")
    ContentHash: str | None = _opt("Content hash of the client's copy.", max_length=128)


@dataclass(frozen=True, slots=True)
class GetValidationRules:
    """The validation rules dictionary with Roblox's keys."""


@dataclass(frozen=True, slots=True)
class ValidateUGCFullBodyAsync:
    """Validate a generation's current edit document as a full body."""

    GenerationId: str = _f("The generation to validate.")


@dataclass(frozen=True, slots=True)
class EndSession:
    """End an active session; its slot goes to the next request at once."""

    SessionId: str = _f("The session to end.")
    Reason: str = _f("Exit, Gen3D, TimeExpired or EquipModel.", max_length=32)


@dataclass(frozen=True, slots=True)
class CreateStyle:
    """Fit a custom preview style from 5 to 30 example images; fitted asynchronously (GetStyle)."""

    Name: str = _f("The style's display name.", max_length=64)
    Images: list = _f("Example images in the style, 5 to 30, all JPEG, all PNG or all WebP (base64 strings over "
                      "HTTP JSON).")
    Portraits: bool | None = _opt("The examples are portraits (default true): at least half must show a face, and "
                                  "the style is fitted from the person, the background from the rest.")


@dataclass(frozen=True, slots=True)
class GetStyle:
    """A custom style's state: Pending, Fitting (with Progress), Done (usable as Style) or Failed (with Error)."""

    StyleId: str = _f("Id returned by CreateStyle.", max_length=64)


@dataclass(frozen=True, slots=True)
class ListStyles:
    """The experience's custom styles, oldest first."""


@dataclass(frozen=True, slots=True)
class DeleteStyle:
    """Delete a custom style (its examples too, if it is not fitted yet); previews made with it stay."""

    StyleId: str = _f("Id returned by CreateStyle.", max_length=64)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: type
    roles: frozenset[str]


def _spec(cls: type, *roles: str) -> MethodSpec:
    return MethodSpec(cls.__name__, cls, frozenset(roles))


METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        _spec(CreatePlayerToken, "server"),
        _spec(CreateEditorLink, "server"),
        _spec(RevokePlayerTokens, "server"),
        _spec(RequestAvatarGenerationSessionAsync, "server"),
        _spec(CancelSessionRequest, "server"),
        _spec(GetSessionRequest, "server"),
        _spec(PromptSelectAvatarGenerationImageAsync, "server"),
        _spec(RespondPromptSelectImage, "client"),
        _spec(GenerateAvatar2DPreviewAsync, "server"),
        _spec(GenerateAvatar2DPreviewBatch, "server"),
        _spec(LoadAvatar2DPreviewAsync, "server", "client"),
        _spec(GenerateAvatarAsync, "server"),
        _spec(LoadGeneratedAvatarAsync, "server", "client"),
        _spec(ApplyEdits, "server", "client"),
        _spec(SyncDocument, "server", "client"),
        _spec(SetHairstyle, "server", "client"),
        _spec(PromptCreateAvatarAsync, "server"),
        _spec(RespondPromptCreateAvatar, "client"),
        _spec(GetValidationRules, "server", "client"),
        _spec(ValidateUGCFullBodyAsync, "server"),
        _spec(EndSession, "server"),
        _spec(CreateStyle, "server"),
        _spec(GetStyle, "server"),
        _spec(ListStyles, "server"),
        _spec(DeleteStyle, "server"),
    )
}
