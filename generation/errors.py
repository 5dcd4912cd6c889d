"""Typed refusals of the 2D photo pipeline (SPEC §5).

Every error is an :class:`schemas.errors.InputRejected`: the input itself is
unusable, so the request is never charged against a quota.  Each class fixes a
stable ``code`` (the class name, as Roblox spells its errors), the HTTP
``status`` the server should answer with, and a default ``message`` a player
can read; callers may pass a more specific message.

=========================  ======  ============================================
code                       status  meaning
=========================  ======  ============================================
``UnsupportedImageFormat``  415    not a JPEG, PNG or WebP file
``ImageTooLarge``           413    file over the byte limit, or pixel count over
                                   the decompression-bomb limit
``InvalidImage``            422    truncated or corrupt image data
``ImageTooSmall``           422    shorter side below the minimum (200 px)
``NoFaceDetected``          422    no face found in the photo
``FaceFeaturesNotVisible``  422    a face was found but its eyes, nose and mouth
                                   could not be located, or an eye or the mouth
                                   is covered
``FaceTooSmall``            422    the face covers too little of the frame
                                   (group photo, distant figure)
``MultipleFaces``           422    two or more faces of comparable size
``FacePoseTooExtreme``      422    head turned more than 45° away from the camera
``TooDark``                 422    the face (or the photo) is too dark to read
``PhotoRotated``            422    the photo is sideways or upside down
``PromptModerated``         400    ``TextPrompt`` contains a blocked word
``PromptTooLong``           400    ``TextPrompt`` over 500 characters
``UnknownStyle``            400    ``Style`` is not one of the known styles
=========================  ======  ============================================
"""

from __future__ import annotations

from schemas.errors import InputRejected

__all__ = [
    "PhotoError",
    "UnsupportedImageFormat",
    "ImageTooLarge",
    "InvalidImage",
    "ImageTooSmall",
    "NoFaceDetected",
    "FaceFeaturesNotVisible",
    "PromptTooLong",
    "UnknownStyle",
    "FaceTooSmall",
    "MultipleFaces",
    "FacePoseTooExtreme",
    "PromptModerated",
    "TooDark",
    "PhotoRotated",
]


class PhotoError(InputRejected):
    """Base of the 2D pipeline's refusals; ``code`` defaults to the class name."""

    status = 422
    default_message = "This photo can't be used."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message, code=type(self).__name__)


class UnsupportedImageFormat(PhotoError):
    status = 415
    default_message = "This file type isn't supported. Please use a JPEG, PNG or WebP photo."


class ImageTooLarge(PhotoError):
    status = 413
    default_message = "This photo is too large. Please use a photo under 10 MB."


class InvalidImage(PhotoError):
    status = 422
    default_message = "This photo couldn't be read; the file may be damaged or incomplete. Please try another photo."


class ImageTooSmall(PhotoError):
    status = 422
    default_message = "This photo is too small. Please use a photo at least 200 pixels on each side."


class NoFaceDetected(PhotoError):
    status = 422
    default_message = (
        "We couldn't find a face in this photo. Please use a clear, well-lit photo "
        "of your face looking at the camera."
    )


class FaceFeaturesNotVisible(PhotoError):
    status = 422
    default_message = (
        "We found a face but couldn't see the eyes, nose and mouth clearly. Please make "
        "sure nothing covers your face and try again."
    )


class PromptTooLong(PhotoError):
    status = 400
    default_message = "The text prompt is too long. Please keep it under 500 characters."


class UnknownStyle(PhotoError):
    status = 400
    default_message = "This style isn't available."


class FaceTooSmall(PhotoError):
    status = 422
    default_message = (
        "Your face is too small in this photo. Please use a head-and-shoulders photo "
        "where your face fills more of the picture."
    )


class MultipleFaces(PhotoError):
    status = 422
    default_message = (
        "We found more than one face in this photo. Please use a photo with only you in it."
    )


class FacePoseTooExtreme(PhotoError):
    status = 422
    default_message = (
        "Your head is turned too far to the side. Please look towards the camera and try again."
    )


class PromptModerated(PhotoError):
    status = 400
    default_message = (
        "The text prompt contains words we can't use. Please describe your avatar differently."
    )


class TooDark(PhotoError):
    status = 422
    default_message = (
        "This photo is too dark for us to see your face. Please take one in better light, "
        "facing a window or a lamp, and try again."
    )


class PhotoRotated(PhotoError):
    status = 422
    default_message = (
        "This photo seems to be sideways or upside down. Please rotate it so that your face is "
        "upright and try again."
    )
