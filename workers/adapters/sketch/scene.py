"""What ``inferq/sketch`` draws for a prompt: its palette and its layers of motifs, in pure Python.

The prompt's words decide the scene; the seed only decides where and how each
motif lands (see ``render``). Colour words ("red", "ocean", "sunset",
"forest", "night"...) pick the palette, shape words ("circle", "square",
"stripes", "stars", "mountain"...) pick the motifs, a number word before a
shape word fixes how many are drawn, and every other word is hashed to a
position and, when the prompt names no shape at all, to a motif.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from dataclasses import dataclass

RGB = tuple[float, float, float]

STEPS = {"low": 4, "medium": 8, "high": 16}
"""Render steps per quality: the first paints the background, the last the pencil finish."""

PALETTES: dict[str, tuple[str, ...]] = {
    "red": ("#3b0a0a", "#8c1c13", "#d7263d", "#f46036", "#ff9f80", "#ffe1d6"),
    "ocean": ("#03256c", "#6cc4f4", "#1768ac", "#06bee1", "#a7e8f2", "#f4fbff"),
    "sunset": ("#2e1a47", "#ff8c5a", "#ffb26b", "#ffd56f", "#e84a5f", "#6a2c70"),
    "forest": ("#d8ecd0", "#87bba2", "#1b4332", "#2d6a4f", "#40916c", "#95d5b2"),
    "night": ("#02030f", "#1b1f4b", "#f6f1c7", "#7f7fd5", "#3a3f8f", "#c3c3e6"),
    "desert": ("#fde2b8", "#f4a261", "#e76f51", "#c05c2c", "#8d5524", "#2a9d8f"),
    "snow": ("#e8f1f8", "#c5d9ea", "#ffffff", "#8fb3d1", "#4a6f91", "#223e59"),
    "fire": ("#1a0000", "#7a0c00", "#ff4500", "#ff8c00", "#ffd700", "#fff3b0"),
    "pink": ("#ffe5ec", "#ffc2d1", "#ff8fab", "#fb6f92", "#c9184a", "#590d22"),
    "gold": ("#fff8e1", "#ffe08a", "#f4c430", "#d4a017", "#b8860b", "#5c4300"),
    "purple": ("#10002b", "#3c096c", "#7b2cbf", "#c77dff", "#e0aaff", "#ff9e00"),
    "gray": ("#f2f2f2", "#bfbfbf", "#595959", "#262626", "#8c8c8c", "#d9d9d9"),
}
"""Palettes as (sky top, sky bottom, accents...)."""

COLOUR_WORDS = {
    **{word: word for word in PALETTES},
    **dict.fromkeys(("crimson", "blood", "cherry", "ruby"), "red"),
    **dict.fromkeys(("sea", "water", "blue", "lake", "river", "wave", "beach", "sky"), "ocean"),
    **dict.fromkeys(("dusk", "evening", "dawn", "sunrise", "orange", "autumn"), "sunset"),
    **dict.fromkeys(("tree", "jungle", "green", "leaf", "grass", "garden", "pine"), "forest"),
    **dict.fromkeys(("dark", "space", "midnight", "moon", "galaxy", "black"), "night"),
    **dict.fromkeys(("sand", "dune", "canyon", "brown"), "desert"),
    **dict.fromkeys(("winter", "ice", "white", "snowy", "frost", "cold"), "snow"),
    **dict.fromkeys(("flame", "lava", "volcano", "hot", "burning"), "fire"),
    **dict.fromkeys(("rose", "flower", "blossom", "candy"), "pink"),
    **dict.fromkeys(("yellow", "golden", "sun", "sunny", "honey", "lemon"), "gold"),
    **dict.fromkeys(("violet", "lavender", "magenta", "plum"), "purple"),
    **dict.fromkeys(("grey", "fog", "mist", "stone", "silver", "rain", "storm"), "gray"),
}
"""Words that bias the palette, and the palette each one picks."""

MOTIF_DEPTH = {
    "star": 0,
    "blob": 1,
    "stripe": 2,
    "sun": 3,
    "mountain": 4,
    "wave": 5,
    "triangle": 6,
    "square": 7,
    "ring": 8,
    "circle": 9,
}
"""Every motif, by how far back it is drawn (painter's order: lowest first)."""

HASHED_MOTIFS = tuple(sorted(set(MOTIF_DEPTH) - {"sun"}))
"""Motifs an unknown word may stand for (a sun is only drawn when asked for, and only once)."""

MOTIF_WORDS = {
    **{word: word for word in MOTIF_DEPTH},
    **dict.fromkeys(("ball", "bubble", "dot", "planet", "orb", "eye", "balloon", "coin"), "circle"),
    **dict.fromkeys(("sun", "moon", "sunset", "sunrise", "light"), "sun"),
    **dict.fromkeys(("orbit", "donut", "halo", "target"), "ring"),
    **dict.fromkeys(("box", "block", "building", "city", "cube", "window", "tower", "house"), "square"),
    **dict.fromkeys(("rectangle", "brick", "wall", "grid"), "square"),
    **dict.fromkeys(("pyramid", "tree", "forest", "pine", "spike", "tent"), "triangle"),
    **dict.fromkeys(("hill", "peak", "alps", "volcano", "range", "cliff"), "mountain"),
    **dict.fromkeys(("ocean", "sea", "water", "river", "lake", "tide", "surf"), "wave"),
    **dict.fromkeys(("line", "rain", "flag", "zebra", "band", "stripy"), "stripe"),
    **dict.fromkeys(("night", "space", "galaxy", "sparkle", "constellation"), "star"),
    **dict.fromkeys(("cloud", "smoke", "fog", "glow", "dream", "mist"), "blob"),
}
"""Words that pick a motif, and the motif each one picks."""

NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "lone": 1,
    "two": 2,
    "pair": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
}
"""Count words; a count applies to the next motif word."""

COLLECTIVE = frozenset(
    ("forest", "city", "galaxy", "night", "space", "rain", "grid", "wall", "range", "constellation")
    + ("sea", "ocean", "water", "river", "lake", "tide", "surf", "fog", "mist", "smoke", "cloud")
)
"""Motif words that name many things at once: ``"a forest"`` is not one tree."""

KNOWN = frozenset(COLOUR_WORDS) | frozenset(MOTIF_WORDS) | frozenset(NUMBER_WORDS)
"""Every word the planner gives a meaning to."""

MAX_COUNT = 40
"""Largest count honoured for one motif."""


@dataclass(frozen=True)
class Layer:
    """One render step's worth of one motif.

    Attributes:
        motif: A key of ``MOTIF_DEPTH``.
        count: How many to draw, when the prompt says; ``None`` lets the seed choose.
        anchor: Where the motif gathers, as fractions of width and height.
    """

    motif: str
    count: int | None
    anchor: tuple[float, float]


@dataclass(frozen=True)
class ScenePlan:
    """Everything the prompt decides about an image.

    Attributes:
        palette: Sky top, sky bottom, then accent colours, as 0..1 RGB.
        layers: One per middle render step, back to front.
        steps: Render steps in all (background and first layer, one per other layer, finish).
        detail: 0 (low) to 2 (high): how much pencil finish is drawn.
        key: A 32-bit digest of the prompt, mixed into the seed of every image.
    """

    palette: tuple[RGB, ...]
    layers: tuple[Layer, ...]
    steps: int
    detail: int
    key: int


def digest(text: str) -> int:
    """A stable 32-bit hash of any ``text``, lone surrogates too (Python's ``hash`` changes per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:4], "big")


def words_of(prompt: str) -> list[str]:
    """The prompt's lowercase words, plural ``s`` dropped where that makes a known word."""
    found = []
    for word in re.findall(r"[a-z0-9]+", prompt.lower()):
        singular = word[:-1] if word.endswith("s") and len(word) > 3 else word
        found.append(singular if word not in KNOWN and singular in KNOWN else word)
    return found


def plan_scene(prompt: str, quality: str, style: str) -> ScenePlan:
    """Reads the prompt into a scene; ``quality`` sets the number of steps, ``style`` the saturation."""
    words = words_of(prompt) or ["sketch"]
    steps = STEPS[quality]
    layers = _layers(words, steps - 1)
    palette = tuple(_styled(colour, style) for colour in _palette(words, prompt))
    return ScenePlan(palette, layers, steps, list(STEPS).index(quality), digest(prompt))


def _anchor(word: str, index: int) -> tuple[float, float]:
    value = digest(f"{index}:{word}")
    return 0.15 + 0.7 * (value & 0xFFFF) / 0xFFFF, 0.15 + 0.7 * (value >> 16) / 0xFFFF


def _count(digits: str) -> int | None:
    """A number in the prompt as a count: at most ``MAX_COUNT``, none for zero (never ``int()`` of
    thousands of digits, which Python refuses)."""
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_COUNT)):
        return MAX_COUNT
    return min(int(significant or "0"), MAX_COUNT) or None


def _named_motifs(words: list[str]) -> list[Layer]:
    named: dict[str, Layer] = {}
    pending: int | None = None
    for index, word in enumerate(words):
        if word.isdigit():
            pending = _count(word)
        elif word in NUMBER_WORDS:
            pending = NUMBER_WORDS[word]
        elif word in MOTIF_WORDS:
            motif = MOTIF_WORDS[word]
            if pending == 1 and word in COLLECTIVE:
                pending = None
            if motif == "sun" and pending is None:
                pending = 1  # one sun, however many steps there are
            count = pending if pending is not None else (named[motif].count if motif in named else None)
            named[motif] = Layer(motif, count, _anchor(word, index))
            pending = None
    return list(named.values())


def _layers(words: list[str], slots: int) -> tuple[Layer, ...]:
    named = _named_motifs(words)
    counted = [layer for layer in named if layer.count is not None][:slots]
    free = [layer for layer in named if layer.count is None]
    plain = [(i, w) for i, w in enumerate(words) if len(w) > 2 and w not in NUMBER_WORDS] or list(
        enumerate(words)
    )
    taken = {layer.motif for layer in counted}
    for index, word in plain:  # unnamed words pick motifs too, for variety and for prompts naming none
        if len(free) >= 3:
            break
        motif = HASHED_MOTIFS[digest(word) % len(HASHED_MOTIFS)]
        if motif not in taken | {layer.motif for layer in free}:
            free.append(Layer(motif, None, _anchor(word, index)))
    if len(free) == 1:  # a one-motif prompt still gets a second motif, for depth
        index = (HASHED_MOTIFS.index(free[0].motif) + 1 + digest(" ".join(words)) % 8) % len(HASHED_MOTIFS)
        free.append(Layer(HASHED_MOTIFS[index], None, _anchor(words[-1], len(words))))
    chosen = counted + [free[i % len(free)] for i in range(slots - len(counted))] if free else counted
    subjects = {layer.motif for layer in named}  # what the prompt names goes in front of the rest
    return tuple(sorted(chosen, key=lambda layer: (layer.motif in subjects, MOTIF_DEPTH[layer.motif])))


def _palette(words: list[str], prompt: str) -> list[RGB]:
    names = list(dict.fromkeys(COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS))
    if not names:
        return _generated_palette(digest(prompt))
    sky = [_hex(c) for c in PALETTES[names[0]][:2]]
    accents = [_hex(c) for name in names for c in PALETTES[name][2:]]
    if len(names) > 1:  # the later colour words lead the accents, so each one shows
        accents = [_hex(c) for name in names[1:] for c in PALETTES[name][2:4]] + accents
    return sky + accents


def _generated_palette(value: int) -> list[RGB]:
    hue = (value & 0xFFFF) / 0xFFFF
    spread = (0.08, 0.5, 0.33, 0.42)[(value >> 16) % 4]  # analogous, complementary, triadic, split
    dark = (value >> 20) % 3 == 0
    sky = [_hls(hue, 0.12, 0.4), _hls(hue + 0.05, 0.3, 0.5)] if dark else [_hls(hue, 0.92, 0.5)] * 2
    if not dark:
        sky[1] = _hls(hue + 0.04, 0.78, 0.55)
    accents = [_hls(hue + spread * k, light, 0.7) for k in (1, -1, 2) for light in (0.35, 0.6)]
    return sky + accents


def _styled(colour: RGB, style: str) -> RGB:
    h, lightness, s = colorsys.rgb_to_hls(*colour)
    if style == "natural":
        return colorsys.hls_to_rgb(h, 0.15 + 0.7 * lightness, s * 0.55)
    return colorsys.hls_to_rgb(h, lightness, min(1.0, s * 1.15))


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    return colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)


def _hex(code: str) -> RGB:
    return (int(code[1:3], 16) / 255, int(code[3:5], 16) / 255, int(code[5:7], 16) / 255)
