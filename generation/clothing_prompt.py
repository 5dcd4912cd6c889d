"""Clothing prompt parser: colour words + garment words ("red shirt", "blue jeans",
"white sneakers") in a text prompt pick the shirt / pants / shoes / hair colours."""

from __future__ import annotations

import re

__all__ = ["parse_clothing_prompt", "DEFAULT_CLOTHING"]

DEFAULT_CLOTHING = {"shirt": (46, 94, 170), "pants": (42, 46, 60), "shoes": (34, 30, 30)}

_COLOR_WORDS = {
    "red": (190, 40, 45), "orange": (230, 120, 40), "yellow": (235, 200, 50), "green": (50, 140, 70),
    "blue": (46, 94, 170), "navy": (30, 40, 90), "teal": (30, 130, 130), "purple": (110, 60, 150),
    "pink": (230, 130, 170), "black": (25, 25, 28), "white": (235, 235, 235), "gray": (128, 128, 130),
    "grey": (128, 128, 130), "brown": (110, 70, 40), "beige": (215, 195, 160), "maroon": (110, 25, 35),
    "blonde": (225, 190, 110), "blond": (225, 190, 110),
}
_GARMENTS = {
    "shirt": "shirt", "t-shirt": "shirt", "tshirt": "shirt", "tee": "shirt", "top": "shirt", "hoodie": "shirt",
    "sweater": "shirt", "jacket": "shirt", "blouse": "shirt", "jersey": "shirt", "pants": "pants",
    "trousers": "pants", "jeans": "pants", "shorts": "pants", "skirt": "pants", "leggings": "pants",
    "shoes": "shoes", "shoe": "shoes", "sneakers": "shoes", "boots": "shoes", "hair": "hair",
}
_PROMPT_RE = re.compile(
    r"\b(" + "|".join(sorted(_COLOR_WORDS, key=len, reverse=True)) + r")\s+(?:[a-z]+\s+)?("
    + "|".join(sorted((re.escape(g) for g in _GARMENTS), key=len, reverse=True)) + r")\b"
)


def parse_clothing_prompt(text: str | None) -> dict[str, tuple[tuple[int, int, int], str]]:
    """Colour + garment phrases in ``text`` → {slot: (rgb, phrase)} for slots
    shirt / pants / shoes / hair.  The first phrase for a slot wins."""
    out: dict[str, tuple[tuple[int, int, int], str]] = {}
    if not text:
        return out
    for m in _PROMPT_RE.finditer(text.lower()):
        slot = _GARMENTS[m.group(2)]
        out.setdefault(slot, (_COLOR_WORDS[m.group(1)], m.group(0)))
    return out
