"""Every error code the server answers with, once: its HTTP status and what it means.

The OpenAPI document (:mod:`schemas.openapi`) lists them under each status; a test
walks the source and checks that every code raised anywhere is here with its status.
"""

from __future__ import annotations

__all__ = ["CODES", "codes_for"]

#: code → (HTTP status, meaning)
CODES: dict[str, tuple[int, str]] = {
    # 400: the request breaks a rule
    "BadRequest": (400, "The request is not acceptable."),
    "InvalidParams": (400, "A parameter is missing, of the wrong type or out of range."),
    "MalformedFrame": (400, "A websocket frame is not a msgpack request."),
    "FrameTooComplex": (400, "A websocket frame nests too deeply or holds too many items."),
    "PromptTooLong": (400, "The text prompt is longer than 500 characters."),
    "PromptModerated": (400, "The text prompt holds words that are not allowed."),
    "UnknownStyle": (400, "No such style (built in, or a custom style of this experience)."),
    "TooFewExamples": (400, "A custom style needs at least 5 example images."),
    "TooManyExamples": (400, "A custom style takes at most 30 example images."),
    # 401: who is calling is not known
    "Unauthorized": (401, "No credential, or one that does not fit the route."),
    "InvalidApiKey": (401, "The API key is unknown, or was replaced and its grace period is over."),
    "TokenInvalid": (401, "The player token is malformed or its signature is wrong."),
    "TokenExpired": (401, "The player token has expired."),
    "TokenRevoked": (401, "The player's tokens were revoked."),
    # 403: known, but not allowed
    "Forbidden": (403, "The caller may not do this (another player's resource, or the wrong role)."),
    "OriginNotAllowed": (403, "A browser page of another site opened the websocket."),
    # 404: no such thing for this caller
    "NotFound": (404, "No such route or resource."),
    "UnknownMethod": (404, "No such method."),
    "RequestNotFound": (404, "No such session request."),
    "FileNotFound": (404, "No such file."),
    "PreviewNotFound": (404, "No such preview."),
    "GenerationNotFound": (404, "No such generation."),
    "BundleNotFound": (404, "No such published bundle."),
    "PromptNotFound": (404, "No such prompt."),
    "SelfiePromptNotFound": (404, "No such selfie prompt."),
    "StyleNotFound": (404, "No such custom style for this experience."),
    "ExamplesLost": (404, "A custom style's example images are gone, so it cannot be fitted."),
    # 405
    "MethodNotAllowed": (405, "The route does not take this HTTP method."),
    # 408
    "Timeout": (408, "The player did not answer the prompt in time."),
    # 409: the state does not allow it
    "Conflict": (409, "The state does not allow this now."),
    "SessionNotActive": (409, "The session is not active (it ended, or never started)."),
    "RequestAlreadyQueued": (409, "The player already has a session request waiting."),
    "GenerationInProgress": (409, "A generation of this session is still being made."),
    "Allowed2DGenerationsExceeded": (409, "The session's 2D previews are used up."),
    "Allowed3DGenerationsExceeded": (409, "The session's 3D generations are used up."),
    "FileNotPending": (409, "The file was uploaded already, or its prompt ended."),
    "SelfieConsentDenied": (409, "The player did not consent to a selfie."),
    "MediaPermissionsDenied": (409, "The player's device did not allow taking a photo."),
    "AlreadyPublished": (409, "The generation is published; it cannot be edited or published again."),
    "PublishInProgress": (409, "The generation is being published."),
    "EditNotSaved": (409, "An edit could not be stored; the batch was not applied."),
    "NoHairAccessory": (409, "The avatar has no hair accessory to restyle."),
    "HairstyleInProgress": (409, "A hairstyle is being made for this avatar."),
    "HairNotRestylable": (409, "The hair mesh was reshaped by other edits and cannot be restyled."),
    "FeatureUnavailable": (409, "The feature is not available on this server."),
    "StyleNotReady": (409, "The custom style is not fitted yet."),
    "StyleFailed": (409, "The custom style could not be fitted."),
    "TooManyStyles": (409, "The experience has as many custom styles as it may."),
    "PlayerSessionActive": (409, "The player has a session or a queued request (acs admin erase-player)."),
    # 413
    "PayloadTooLarge": (413, "The request body is too large."),
    "ImageTooLarge": (413, "The image is larger than 10 MB."),
    "UploadQuotaExceeded": (413, "The session's upload bytes are used up."),
    "ExamplesTooLarge": (413, "A custom style's example images are too large together."),
    # 415
    "UnsupportedImageFormat": (415, "The file is not a JPEG, PNG or WebP image."),
    # 422: the input is unusable
    "InputRejected": (422, "The input cannot be used."),
    "InvalidImage": (422, "The image cannot be read."),
    "ImageTooSmall": (422, "The image is smaller than 200 px on a side."),
    "NoFaceDetected": (422, "No face was found in the photo."),
    "FaceFeaturesNotVisible": (422, "The face's eyes, nose and mouth are not clearly visible."),
    "FaceTooSmall": (422, "The face is too small in the photo."),
    "MultipleFaces": (422, "More than one face is in the photo."),
    "FacePoseTooExtreme": (422, "The head is turned too far."),
    "TooDark": (422, "The photo is too dark."),
    "PhotoRotated": (422, "The photo is sideways or upside down."),
    "InvalidLandmarks": (422, "The face landmarks of a preview are malformed."),
    "InvalidEdit": (422, "An edit op is malformed or refers to what does not exist."),
    "MeshLimitExceeded": (422, "An edit would take a mesh past its limits."),
    "ReplicaDiverged": (422, "A copy's edits no longer match the document."),
    "MixedFormats": (422, "A custom style's example images are not all of one format."),
    "NoFaceInExamples": (422, "A portrait style's example images show no face."),
    "UnreadableImage": (422, "A custom style's example image is not a readable JPEG, PNG or WebP file."),
    # 429: too much, too fast
    "TooManyRequests": (429, "Too many requests; slow down."),
    "TooManyConnections": (429, "The player has as many websockets open as it may."),
    "TooManyUploads": (429, "The session's uploads are used up."),
    "QueueFull": (429, "The experience has as many session requests waiting as it may."),
    "BatchQuotaExceeded": (429, "The experience's batch previews for this hour are used up."),
    # 5xx: the server could not do it
    "InternalError": (500, "Something went wrong on the server (logged there)."),
    "GenerationFailed": (500, "A generation job failed; try again."),
    "FitFailed": (500, "A custom style's fit broke on every attempt (GetStyle's Error; create it again)."),
    "BackendUnavailable": (503, "A model or asset the request needs is not installed on this server."),
    "LikenessUnavailable": (503, "The likeness model is not installed on this server."),
    "UploadFailed": (503, "The file could not be stored; try again."),
}


def codes_for(status: int) -> list[str]:
    """The codes answered with HTTP ``status``, in table order."""
    return [code for code, (s, _) in CODES.items() if s == status]
