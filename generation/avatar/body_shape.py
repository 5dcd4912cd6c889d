"""Body shape: words of the prompt and the ProportionScale → MakeHuman macro directions.

The default body is gender-neutral (half MakeHuman's female, half its male macro
targets), a young adult of average muscle and weight; nothing about it is guessed
from the photo.  A player may ask for a build in the prompt; each word moves the
body along one gender-neutral macro direction of the template
(:data:`generation.avatar.template.BODY_DIRECTIONS`):

=====================================================  ==========================
words                                                  direction (weight)
=====================================================  ==========================
slim, slender, skinny, thin, petite, lean              slim (0.6)
heavy, heavyset, chubby, curvy, stocky, plus-size,      heavy (1.0)
plump, round, big
muscular, strong, buff, brawny                         muscular (1.0)
athletic                                               muscular (0.7), slim (0.4)
tall                                                   tall (0.07: about +5 cm)
=====================================================  ==========================

``ProportionScale`` (weighted by ``BodyTypeScale``, as Roblox applies it only to
the Rthro-like end) adds MakeHuman's "ideal proportions" direction: longer legs, a
narrower waist.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["BODY_WORDS", "body_weights", "body_offset"]

BODY_WORDS: dict[str, dict[str, float]] = {
    **{w: {"slim": 0.6} for w in ("slim", "slender", "skinny", "thin", "petite", "lean")},
    **{w: {"heavy": 1.0} for w in ("heavy", "heavyset", "chubby", "curvy", "stocky", "plus-size", "plump",
                                   "round", "big")},
    **{w: {"muscular": 1.0} for w in ("muscular", "strong", "buff", "brawny")},
    "athletic": {"muscular": 0.7, "slim": 0.4},
    "tall": {"tall": 0.07},
}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def body_weights(text_prompt: str | None, body_type_scale: float = 0.0, proportion_scale: float = 0.0
                 ) -> dict[str, float]:
    """Direction → weight in 0..1 from the prompt's body words and the scales."""
    out: dict[str, float] = {}
    for word in _WORD.findall((text_prompt or "").lower()):
        for k, v in BODY_WORDS.get(word, {}).items():
            out[k] = max(out.get(k, 0.0), v)
    if body_type_scale * proportion_scale > 0:
        out["ideal"] = float(body_type_scale * proportion_scale)
    return out


def body_offset(deltas: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray | None:
    """Σ weight · delta over the asked directions ((N,3) float64), or None for the default body."""
    if not weights:
        return None
    return sum(w * deltas[k].astype(np.float64) for k, w in weights.items())
