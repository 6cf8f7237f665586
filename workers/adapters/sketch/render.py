"""Drawing ``inferq/sketch`` images step by step: one layer of one motif per step, then a pencil finish.

Every shape is a signed distance (in pixels) turned into anti-aliased
coverage, evaluated only inside the shape's bounding box. All randomness comes
from one generator seeded per image, so a render is a pure function of its
plan, size, background, seed and index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from workers.adapters.sketch.canvas import Array, Canvas, luma
from workers.adapters.sketch.scene import RGB, Layer, ScenePlan

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""Rec. 601 weights: the luminance the pencil finish shades by."""


def render_steps(plan: ScenePlan, canvas: Canvas, *, seed: int, index: int) -> Iterator[int]:
    """Renders image ``index`` onto ``canvas``, yielding the step number (1-based) after each step."""
    painter = Painter(canvas, np.random.default_rng([seed % 2**64, index, plan.key]), plan)
    if not canvas.transparent:
        painter.background()
    for step, layer in enumerate(plan.layers, start=1):
        painter.draw(layer)
        yield step
    painter.finish()
    yield plan.steps


def star_distance(dx: Array, dy: Array, radius: float, inner: float = 0.45) -> Array:
    """Signed distance to an upright five-pointed star (after Inigo Quilez's ``sdStar5``); y points up."""
    k1x, k1y = 0.809016994375, -0.587785252292
    px = np.abs(dx)
    fold = 2.0 * np.maximum(k1x * px + k1y * dy, 0.0)
    px, py = px - fold * k1x, dy - fold * k1y
    fold = 2.0 * np.maximum(-k1x * px + k1y * py, 0.0)
    px, py = np.abs(px + fold * k1x), py - fold * k1y - radius
    bax, bay = -inner * k1y, inner * k1x - 1.0
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0.0, radius)
    distance: Array = np.hypot(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)
    return distance


class Painter:
    """Draws a plan's layers on a canvas; one method per motif, named ``motif_<name>``."""

    def __init__(self, canvas: Canvas, rng: np.random.Generator, plan: ScenePlan) -> None:
        self.canvas, self.rng, self.plan = canvas, rng, plan
        self.unit = float(min(canvas.width, canvas.height))
        self.size = 1.0 / (1.0 + 0.25 * plan.detail)
        """Shapes shrink as quality (and so their number) grows."""
        self.seen: dict[str, int] = {}

    def colour(self, k: int | None = None) -> RGB:
        """Accent ``k`` (cycling), or a random one."""
        accents = self.plan.palette[2:]
        return accents[int(self.rng.integers(len(accents))) if k is None else k % len(accents)]

    def brightest(self) -> RGB:
        """The lightest accent (snow, foam, suns)."""
        return max(self.plan.palette[2:], key=luma)

    def standout(self) -> RGB:
        """The lightest accent, unless the sky is as light: then the accent furthest from the sky."""
        sky = (luma(self.plan.palette[0]) + luma(self.plan.palette[1])) / 2
        bright = self.brightest()
        if abs(luma(bright) - sky) > 0.15:
            return bright
        return max(self.plan.palette[2:], key=lambda colour: abs(luma(colour) - sky))

    def centre(self, layer: Layer, spread: float = 0.2) -> tuple[float, float]:
        """A point scattered around the layer's anchor, in pixels."""
        x, y = np.clip(np.array(layer.anchor) + self.rng.normal(0.0, spread, 2), 0.02, 0.98)
        return float(x) * self.canvas.width, float(y) * self.canvas.height

    def count(self, layer: Layer, low: int, high: int) -> int:
        """The prompt's count for the layer, else a random one in ``low..high``."""
        return layer.count if layer.count is not None else int(self.rng.integers(low, high + 1))

    def background(self) -> None:
        """A sky gradient from the palette's first two colours, tilted a little."""
        canvas, (top, bottom) = self.canvas, np.array(self.plan.palette[:2], np.float32)
        tilt = self.rng.uniform(-0.3, 0.3)
        t = canvas.ys[:, None] / canvas.height + tilt * (canvas.xs[None, :] / canvas.width - 0.5)
        t = np.clip(t, 0.0, 1.0)[..., None]
        canvas.color[:] = top + (bottom - top) * t

    def draw(self, layer: Layer) -> None:
        """Draws one layer and remembers how many of its motif came before."""
        getattr(self, f"motif_{layer.motif}")(layer, self.seen.get(layer.motif, 0))
        self.seen[layer.motif] = self.seen.get(layer.motif, 0) + 1

    def disc(
        self, cx: float, cy: float, radius: float, colour: Sequence[float], opacity: float, ring: float = 0.0
    ) -> None:
        """A filled circle, or a ring ``ring`` pixels thick."""
        box = self.canvas.box(cx, cy, radius + ring, radius + ring)
        if box is None:
            return
        rows, cols, y, x = box
        distance = np.hypot(x - cx, y - cy) - radius
        sdf = np.abs(distance) - ring / 2 if ring else distance
        self.canvas.paint(rows, cols, 0.5 - sdf, colour, opacity)

    def motif_circle(self, layer: Layer, nth: int) -> None:
        """Discs around the anchor, with a soft highlight at higher quality."""
        number = self.count(layer, 2, 4)
        big = 0.3 if number == 1 else 0.14
        for _ in range(number):
            cx, cy = self.centre(layer)
            radius = self.unit * self.rng.uniform(0.35, 1.0) * big * (1.0 if number == 1 else self.size)
            colour = self.colour()
            self.disc(cx, cy, radius, colour, self.rng.uniform(0.8, 1.0))
            if self.plan.detail:
                light = [0.55 + 0.45 * c for c in colour]
                self.disc(cx - radius * 0.3, cy - radius * 0.3, radius * 0.35, light, 0.35)

    def motif_ring(self, layer: Layer, nth: int) -> None:
        """Concentric-ish rings."""
        cx, cy = self.centre(layer, 0.1)
        for k in range(self.count(layer, 2, 4)):
            radius = self.unit * self.size * (0.08 + 0.06 * k + self.rng.uniform(0, 0.03))
            self.disc(cx, cy, radius, self.colour(k + nth), 0.9, ring=self.unit * 0.012 * (1 + k % 2))

    def motif_square(self, layer: Layer, nth: int) -> None:
        """Tilted rectangles."""
        for _ in range(self.count(layer, 2, 4)):
            cx, cy = self.centre(layer)
            half_w, half_h = self.unit * self.size * self.rng.uniform(0.05, 0.16, 2)
            if layer.count is not None:
                half_h = half_w
            angle = self.rng.uniform(-0.5, 0.5)
            box = self.canvas.box(cx, cy, half_w + half_h, half_w + half_h)
            if box is not None:
                rows, cols, y, x = box
                u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
                v = (y - cy) * np.cos(angle) - (x - cx) * np.sin(angle)
                sdf = np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)
                self.canvas.paint(rows, cols, 0.5 - sdf, self.colour(), self.rng.uniform(0.8, 1.0))

    def motif_triangle(self, layer: Layer, nth: int) -> None:
        """Upright triangles (trees, pyramids) along a line through the anchor."""
        number = self.count(layer, 3, 6)
        base_y = (0.45 + 0.3 * layer.anchor[1] + 0.2 * nth / (nth + 2)) * self.canvas.height
        for k in range(number):
            x_frac = (k + self.rng.uniform(0.2, 0.8)) / number
            height = self.unit * self.size * self.rng.uniform(0.15, 0.4)
            half = height * self.rng.uniform(0.3, 0.6)
            cx, top = x_frac * self.canvas.width, base_y - height
            box = self.canvas.box(cx, base_y - height / 2, half, height / 2)
            if box is not None:
                rows, cols, y, x = box
                slant = (np.abs(x - cx) - half * (y - top) / height) * height / np.hypot(height, half)
                sdf = np.maximum(slant, np.maximum(top - y, y - base_y))
                self.canvas.paint(rows, cols, 0.5 - sdf, self.colour(k + nth), 0.95)

    def ridge_fill(self, ridge: Array, colour: RGB, opacity: float = 1.0) -> None:
        """Fills everything below a per-column ridge line."""
        top = max(0, int(ridge.min()) - 1)
        if top < self.canvas.height:
            rows = slice(top, self.canvas.height)
            self.canvas.paint(
                rows, slice(None), self.canvas.ys[rows, None] - ridge[None, :] + 0.5, colour, opacity
            )

    def motif_mountain(self, layer: Layer, nth: int) -> None:
        """A range of peaks; later ranges sit lower and nearer, with snow caps at higher quality."""
        canvas, peaks = self.canvas, self.count(layer, 2, 4)
        base = canvas.height * (0.68 + 0.2 * nth / (nth + 2) + 0.08 * layer.anchor[1])
        x = canvas.xs
        ridge = np.full(canvas.width, base, np.float32)
        for _ in range(peaks):
            px, lift = self.rng.uniform(0, canvas.width), canvas.height * self.rng.uniform(0.2, 0.5)
            slope = lift / (canvas.width * self.rng.uniform(0.15, 0.35))
            ridge = np.minimum(ridge, base - lift + slope * np.abs(x - px))
        wobble = self.rng.uniform(0.005, 0.015) * canvas.height
        ridge = ridge + wobble * np.sin(x * self.rng.uniform(0.02, 0.06) + self.rng.uniform(0, 6.3))
        self.ridge_fill(ridge.astype(np.float32), self.colour(nth))
        if self.plan.detail:
            snow_line = ridge.min() + canvas.height * 0.06
            cap = np.minimum(ridge + canvas.height * 0.04, snow_line).astype(np.float32)
            rows = slice(max(0, int(ridge.min()) - 1), min(canvas.height, int(snow_line) + 2))
            cover = np.minimum(canvas.ys[rows, None] - ridge + 0.5, cap - canvas.ys[rows, None] + 0.5)
            canvas.paint(rows, slice(None), cover, self.brightest(), 0.85)

    def motif_wave(self, layer: Layer, nth: int) -> None:
        """Bands of water, each lower than the last, with a foam line at higher quality."""
        canvas, bands = self.canvas, self.count(layer, 2, 3)
        for k in range(bands):
            level = canvas.height * (0.45 + 0.1 * layer.anchor[1] + 0.4 * (k + nth) / (bands + nth + 1))
            amplitude = canvas.height * self.rng.uniform(0.01, 0.04)
            frequency = self.rng.uniform(2, 6) * 2 * np.pi / canvas.width
            phase = self.rng.uniform(0, 6.3)
            x = canvas.xs
            ridge = level + amplitude * (np.sin(frequency * x + phase) + 0.3 * np.sin(3.1 * frequency * x))
            ridge = ridge.astype(np.float32)
            self.ridge_fill(ridge, self.colour(k + nth), 0.9)
            if self.plan.detail:
                rows = slice(max(0, int(ridge.min()) - 2), min(canvas.height, int(ridge.max()) + 3))
                foam = 1.5 - np.abs(canvas.ys[rows, None] - ridge[None, :])
                canvas.paint(rows, slice(None), foam, self.brightest(), 0.7)

    def motif_stripe(self, layer: Layer, nth: int) -> None:
        """``count`` parallel translucent bands across the whole canvas."""
        canvas, bands = self.canvas, self.count(layer, 3, 8)
        angle = float(self.rng.choice([0.0, 0.5, 1.0, 1.5]) * np.pi / 4 + self.rng.uniform(-0.15, 0.15))
        along = canvas.xs[None, :] * np.float32(np.cos(angle)) + canvas.ys[:, None] * np.float32(
            np.sin(angle)
        )
        low, high = float(along.min()), float(along.max())
        period = (high - low) / bands
        offset = ((along - low) % period) - period / 2
        width = period * self.rng.uniform(0.2, 0.4)
        cover = width - np.abs(offset) + 0.5
        self.canvas.paint(slice(None), slice(None), cover, self.colour(nth), self.rng.uniform(0.35, 0.6))

    def motif_star(self, layer: Layer, nth: int) -> None:
        """Five-pointed stars, plus a field of dust when the prompt gives no count."""
        number, colour = self.count(layer, 2, 5), self.standout()
        scale = 0.35 if number == 1 else (0.1 if layer.count is not None else 0.04)
        for _ in range(number):
            cx, cy = self.centre(layer, 0.3 if number > 1 else 0.05)
            radius = self.unit * scale * self.rng.uniform(0.6, 1.0)
            box = self.canvas.box(cx, cy, radius, radius)
            if box is not None:
                rows, cols, y, x = box
                self.canvas.paint(rows, cols, 0.5 - star_distance(x - cx, cy - y, radius), colour)
        if layer.count is None:
            dots = int(self.canvas.width * self.canvas.height / 1500 * self.size)
            ys = self.rng.integers(0, self.canvas.height, dots)
            xs = self.rng.integers(0, self.canvas.width, dots)
            shine = self.rng.uniform(0.4, 1.0, dots).astype(np.float32)
            color, alpha = self.canvas.color, self.canvas.alpha
            color[ys, xs] = (
                color[ys, xs] * (1 - shine[:, None]) + np.array(colour, np.float32) * shine[:, None]
            )
            alpha[ys, xs] = alpha[ys, xs] * (1 - shine) + shine

    def motif_sun(self, layer: Layer, nth: int) -> None:
        """Glowing discs."""
        for _ in range(self.count(layer, 1, 1)):
            cx, cy = self.centre(layer, 0.08)
            radius = self.unit * self.rng.uniform(0.09, 0.16)
            box = self.canvas.box(cx, cy, radius * 2.5, radius * 2.5)
            if box is not None:
                rows, cols, y, x = box
                glow = np.exp(-3.0 * np.maximum(np.hypot(x - cx, y - cy) / radius - 1.0, 0.0) ** 1.5)
                self.canvas.paint(rows, cols, glow, self.standout(), 0.5)
            self.disc(cx, cy, radius, self.standout(), 1.0)

    def motif_blob(self, layer: Layer, nth: int) -> None:
        """Soft clouds of colour."""
        for _ in range(self.count(layer, 2, 4)):
            cx, cy = self.centre(layer, 0.25)
            radius = self.unit * self.rng.uniform(0.1, 0.25)
            box = self.canvas.box(cx, cy, radius * 1.6, radius)
            if box is not None:
                rows, cols, y, x = box
                falloff = ((x - cx) / (radius * 1.6)) ** 2 + ((y - cy) / radius) ** 2
                cover = np.exp(-3.0 * falloff) - 0.05
                self.canvas.paint(rows, cols, cover, self.colour(), self.rng.uniform(0.4, 0.7))

    def finish(self) -> None:
        """The pencil pass: outlines, hatching in the shadows (more at higher quality), a vignette."""
        canvas = self.canvas
        light = canvas.color @ LUMA  # premultiplied, so shapes on a transparent canvas get outlines
        edge = np.zeros_like(light)
        edge[:, 1:] += np.abs(np.diff(light, axis=1))
        edge[1:, :] += np.abs(np.diff(light, axis=0))
        shade = 1.0 - 0.8 * np.clip(edge * 4.0 - 0.1, 0.0, 1.0)
        if self.plan.detail:
            dark = np.clip((0.6 - light / np.maximum(canvas.alpha, 1e-6)) * 2.0, 0.0, 1.0)
            period = max(4.0, self.unit / 90)
            for sign, threshold in ((1, 0.0), (-1, 0.5))[: self.plan.detail]:
                diagonal = (canvas.xs[None, :] + sign * canvas.ys[:, None]) % period
                line = np.clip(1.2 - np.abs(diagonal - period / 2), 0.0, 1.0)
                shade *= 1.0 - 0.35 * line * np.clip(dark - threshold, 0.0, 1.0)
        across = (canvas.xs[None, :] / canvas.width - 0.5) ** 2 + (
            canvas.ys[:, None] / canvas.height - 0.5
        ) ** 2
        shade *= 1.0 - 0.35 * across
        canvas.color *= shade[..., None].astype(np.float32)
