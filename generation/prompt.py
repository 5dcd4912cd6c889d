"""TextPrompt: what a player may ask of the procedural backend (SPEC §5).

:func:`parse_prompt` reads a prompt of at most 500 characters against a fixed
vocabulary and returns a :class:`PromptSpec`; every word it could not use is
listed in ``PromptSpec.unused`` (the pipeline reports them in
``validation_warnings``).  Offensive words raise :class:`PromptModerated`.

Vocabulary
==========

========================  ====================================================
kind                      words
========================  ====================================================
colours                   red, crimson, orange, yellow, gold(en), green, lime,
                          olive, teal, turquoise, cyan, blue, navy, purple,
                          violet, lavender, magenta, pink, brown, beige, white,
                          black, grey/gray, silver, blonde/blond, auburn,
                          ginger, platinum
colour modifiers          light, pale, pastel, dark, deep, bright, vivid, neon
targets                   hair (hair, haired) — clothing (shirt, t-shirt,
                          tshirt, top, jacket, hoodie, sweater, jumper, coat,
                          clothes, clothing, outfit, suit, dress, blouse) —
                          background (background, backdrop, bg)
background scenes         studio, neon, bokeh, sky, gradient (also: city →
                          neon, clouds/cloudy → sky, blur(ry) → bokeh)
accessories               glasses (glasses, spectacles, eyeglasses),
                          sunglasses/shades (dark lenses), hat (hat, cap,
                          beanie); a colour before them tints them
expression                smile, smiling, smiley, happy
fillers (no instruction)  a, an, the, and, with, in, on, of, to, is, are,
                          wearing, please, my, colour/color(ed), plain, solid,
                          some, pair
========================  ====================================================

Grammar: the prompt is split into clauses at punctuation.  A colour phrase is
a colour with the modifiers before it (``light blue``); phrases chained by
fillers (``blue and orange``) form a group.  A group is given to the target
word right after it (``red hair``, ``blue background``, ``black hat``), or
else to the nearest target earlier in the clause (``hair in red``,
``background of dark green``), or, when the clause holds only colours, to the
background (``pastel pink``).  ``neon`` is a modifier before a colour and a
background scene otherwise.  Anything else — unknown words, a colour with no
target it can apply to — comes back in ``unused``.  At most two background
colours are used (gradient top and bottom) and one colour per other target.

Moderation: each word is lower-cased, leetspeak-folded (0→o, 1→i, 3→e, 4→a,
5→s, 7→t, @→a, $→s) and squeezed (no letter three times in a row), then
matched against :data:`BLOCKLIST` as a whole word or as the start of a word
(``fucking``); a hit raises :class:`PromptModerated` (400).
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass

import numpy as np

from .errors import PromptModerated, PromptTooLong

__all__ = ["PromptSpec", "parse_prompt", "is_offensive", "VOCABULARY", "BLOCKLIST", "MAX_PROMPT_CHARS", "BACKGROUND_SCENES"]

RGB = tuple[int, int, int]
MAX_PROMPT_CHARS = 500
BACKGROUND_SCENES = ("studio", "neon", "bokeh", "sky", "gradient")

_COLOURS: dict[str, RGB] = {
    "red": (200, 40, 45), "crimson": (170, 20, 50), "orange": (240, 130, 30), "yellow": (245, 210, 50),
    "gold": (212, 175, 55), "golden": (212, 175, 55), "green": (60, 160, 75), "lime": (160, 220, 60),
    "olive": (120, 125, 50), "teal": (30, 140, 140), "turquoise": (60, 200, 190), "cyan": (40, 200, 230),
    "blue": (45, 95, 200), "navy": (25, 35, 90), "purple": (120, 60, 170), "violet": (140, 90, 210),
    "lavender": (190, 170, 230), "magenta": (200, 40, 160), "pink": (240, 140, 180), "brown": (120, 80, 50),
    "beige": (225, 210, 180), "white": (245, 245, 245), "black": (20, 20, 22), "grey": (128, 128, 132),
    "gray": (128, 128, 132), "silver": (190, 192, 198), "blonde": (230, 200, 130), "blond": (230, 200, 130),
    "auburn": (145, 50, 30), "ginger": (190, 90, 40), "platinum": (229, 228, 226),
}
_MODIFIERS: dict[str, tuple[object, float]] = {
    "light": ((255, 255, 255), 0.45), "pale": ((255, 255, 255), 0.6), "pastel": ((255, 255, 255), 0.55),
    "dark": ((0, 0, 0), 0.45), "deep": ((0, 0, 0), 0.25),
    "bright": ("saturate", 1.3), "vivid": ("saturate", 1.4), "neon": ("saturate", 1.6),
}
_TARGETS: dict[str, str] = {
    "hair": "hair", "haired": "hair",
    **{w: "clothing" for w in ("shirt", "t-shirt", "tshirt", "top", "jacket", "hoodie", "sweater", "jumper",
                               "coat", "clothes", "clothing", "outfit", "suit", "dress", "blouse")},
    "background": "background", "backdrop": "background", "bg": "background",
    "glasses": "glasses", "spectacles": "glasses", "eyeglasses": "glasses",
    "sunglasses": "sunglasses", "shades": "sunglasses",
    "hat": "hat", "cap": "hat", "beanie": "hat",
}
_SCENES: dict[str, str] = {
    "studio": "studio", "neon": "neon", "city": "neon", "bokeh": "bokeh", "blur": "bokeh", "blurry": "bokeh",
    "sky": "sky", "clouds": "sky", "cloudy": "sky", "gradient": "gradient",
}
_SMILE = {"smile", "smiling", "smiley", "happy"}
_FILLERS = {"a", "an", "the", "and", "with", "in", "on", "of", "to", "is", "are", "wearing", "please", "my",
            "colour", "color", "coloured", "colored", "plain", "solid", "some", "pair"}

#: word → role, for documentation and tests: "colour", "modifier", "target", "scene", "smile", "filler".
VOCABULARY: dict[str, str] = {
    **{w: "colour" for w in _COLOURS}, **{w: "modifier" for w in _MODIFIERS},
    **{w: "target" for w in _TARGETS}, **{w: "scene" for w in _SCENES if w not in _MODIFIERS},
    **{w: "smile" for w in _SMILE}, **{w: "filler" for w in _FILLERS},
}

#: Blocked word stems (see the module docstring for the matching rules): profanity,
#: sexual content, extremist symbols and violence.
BLOCKLIST = frozenset({
    "fuck", "fck", "fuk", "shit", "bitch", "cunt", "dick", "cock", "pussy", "asshole", "bastard", "whore",
    "slut", "wank", "twat", "bollock", "motherfuck", "porn", "nude", "naked", "nsfw", "sex", "hentai",
    "boob", "boobs", "tits", "penis", "vagina", "genital", "erotic", "fetish", "nazi", "swastika", "hitler", "kkk",
    "isis", "jihad", "gore", "behead", "suicide", "rape", "sexy", "sexual", "retard", "faggot", "fag", "nigg", "kike", "spic",
    "chink", "tranny",
})
# stems that are also the start of harmless words: whole-word match only
_WHOLE_WORD_ONLY = frozenset({"fag", "spic", "tits", "dick", "cock", "isis", "sex", "gore", "kike", "fck", "fuk", "rape", "boob", "boobs"})

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[,;.!?:\n]")
_SEPARATORS = set(",;.!?:\n")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_RUNS = re.compile(r"(.)\1{2,}")
_SINGLE = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class PromptSpec:
    """What a TextPrompt asked for that the procedural backend can render.

    background: up to 2 colours (gradient top, bottom); ``scene``: one of
    :data:`BACKGROUND_SCENES` or None (the style's own).  hair / clothing:
    recolour targets.  glasses: None, or ``(rim_rgb, dark_lenses)``.  hat:
    None or its colour.  smile: lift the mouth corners.  unused: the words not
    used, in prompt order.
    """

    background: tuple[RGB, ...] = ()
    scene: str | None = None
    hair: RGB | None = None
    clothing: RGB | None = None
    glasses: tuple[RGB, bool] | None = None
    hat: RGB | None = None
    smile: bool = False
    unused: tuple[str, ...] = ()

    @property
    def any_edit(self) -> bool:
        """True when the photo itself is edited (hair, clothing, accessories, smile)."""
        return bool(self.hair or self.clothing or self.glasses or self.hat or self.smile)


def _apply_modifiers(rgb: RGB, mods: list[str]) -> RGB:
    c = np.array(rgb, np.float64)
    for word in mods:
        target, amount = _MODIFIERS[word]
        if target == "saturate":
            h, s, v = colorsys.rgb_to_hsv(*(c / 255))
            c = np.array(colorsys.hsv_to_rgb(h, min(1.0, s * amount), min(1.0, v * (0.5 + amount / 2)))) * 255
        else:
            c = c * (1 - amount) + np.array(target, np.float64) * amount
    return tuple(int(round(v)) for v in np.clip(c, 0, 255))


def _fold(word: str) -> tuple[str, str]:
    """(word with runs of 3+ letters cut to 2, word with every run cut to 1), leetspeak-folded."""
    w = word.lower().translate(_LEET)
    return _RUNS.sub(r"\1\1", w), _SINGLE.sub(r"\1", w)


def _blocked(w: str, stem: str, whole: bool) -> bool:
    return w == stem or (not whole and w.startswith(stem))


def is_offensive(text: str) -> bool:
    """True when any word of ``text`` hits :data:`BLOCKLIST` (prompts, avatar names)."""
    for raw in re.findall(r"[\w@$]+", text):
        w2, w1 = _fold(raw)
        for stem in BLOCKLIST:
            s1, whole = _SINGLE.sub(r"\1", stem), stem in _WHOLE_WORD_ONLY
            if _blocked(w2, stem, whole) or (len(s1) >= 3 and _blocked(w1, s1, whole)):
                return True
    return False


def _moderate(text: str) -> None:
    if is_offensive(text):
        raise PromptModerated()


def _role(word: str, nxt: str | None) -> str | None:
    w = word.lower()
    if w == "neon":  # modifier before a colour word, scene otherwise
        return "modifier" if nxt is not None and nxt.lower() in _COLOURS else "scene"
    return VOCABULARY.get(w)


def parse_prompt(text: str | None) -> PromptSpec:
    """Read a TextPrompt (see the module docstring); raises PromptTooLong / PromptModerated."""
    if not text:
        return PromptSpec()
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptTooLong(
            f"The text prompt is too long ({len(text)} characters). "
            f"Please keep it to {MAX_PROMPT_CHARS} characters or fewer."
        )
    _moderate(text)
    clauses: list[list[str]] = [[]]
    for tok in _WORD.findall(text):
        if tok in _SEPARATORS:
            clauses.append([])
        else:
            clauses[-1].append(tok)

    out: dict[str, object] = {"background": [], "scene": None, "hair": None, "clothing": None,
                              "glasses": None, "hat": None, "smile": False}
    accessory_colour: dict[str, RGB] = {}
    unused: list[str] = []

    def give(target: str, colours: list[RGB]) -> list[RGB]:
        """Assign colours to a target; return the ones it could not take."""
        if target == "background":
            room = 2 - len(out["background"])
            out["background"].extend(colours[:room])
            return colours[room:]
        if target in ("glasses", "sunglasses", "hat"):
            key = "glasses" if target == "sunglasses" else target
            if key in accessory_colour:
                return colours
            accessory_colour[key] = colours[0]
            return colours[1:]
        if out[target] is not None:
            return colours
        out[target] = colours[0]
        return colours[1:]

    for clause in clauses:
        roles = [_role(w, clause[i + 1] if i + 1 < len(clause) else None) for i, w in enumerate(clause)]
        only_colours = all(r in ("colour", "modifier", "filler") for r in roles)
        last_target: str | None = None
        i = 0
        while i < len(clause):
            r = roles[i]
            if r == "target":
                last_target = _TARGETS[clause[i].lower()]
                if last_target == "glasses":
                    out["glasses"] = out["glasses"] or "clear"
                elif last_target == "sunglasses":
                    out["glasses"] = "dark"
                elif last_target == "hat":
                    out["hat"] = True
                i += 1
                continue
            if r == "scene":
                out["scene"] = _SCENES[clause[i].lower()]
                i += 1
                continue
            if r == "smile":
                out["smile"] = True
                i += 1
                continue
            if r == "filler":
                i += 1
                continue
            if r not in ("colour", "modifier"):
                unused.append(clause[i])
                i += 1
                continue
            # a colour group: ([modifiers] colour) (filler* [modifiers] colour)*
            group: list[RGB] = []
            words: list[int] = []
            j = i
            while j < len(clause):
                k, mods = j, []
                while k < len(clause) and roles[k] == "modifier":
                    mods.append(clause[k].lower())
                    k += 1
                if k < len(clause) and roles[k] == "colour":
                    group.append(_apply_modifiers(_COLOURS[clause[k].lower()], mods))
                    words.extend(range(j, k + 1))
                    j = k + 1
                    f = j
                    while f < len(clause) and roles[f] == "filler":
                        f += 1
                    if f < len(clause) and roles[f] in ("colour", "modifier"):
                        j = f
                        continue
                    break
                # dangling modifiers: nothing to modify
                unused.extend(clause[m] for m in range(j, k))
                j = k
                break
            nxt = j
            while nxt < len(clause) and roles[nxt] in ("filler", "scene"):
                nxt += 1
            target = None
            if nxt < len(clause) and roles[nxt] == "target":
                target = _TARGETS[clause[nxt].lower()]
            elif last_target is not None:
                target = last_target
            elif only_colours:
                target = "background"
            if group and target is not None:
                rest = give(target, group)
                if rest:  # colours beyond what the target takes
                    unused.extend(clause[w] for w in words[-len(rest):] if roles[w] == "colour")
            elif group:
                unused.extend(clause[w] for w in words)
            i = max(j, i + 1)

    glasses = None
    if out["glasses"]:
        dark = out["glasses"] == "dark"
        glasses = (accessory_colour.get("glasses", (25, 25, 28)), dark)
    hat = accessory_colour.get("hat", (45, 55, 90)) if out["hat"] else None
    return PromptSpec(background=tuple(out["background"]), scene=out["scene"], hair=out["hair"],
                      clothing=out["clothing"], glasses=glasses, hat=hat, smile=bool(out["smile"]),
                      unused=tuple(unused))
