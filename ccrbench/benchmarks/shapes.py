"""The built-in benchmark: procedurally rendered scenes of shapes with paraphrased captions.

Each task is a domain with its own object families and its own visual statistics,
in the spirit of SeViGe's animals / vehicles / clothes: its own background and its
own colour rendering (a blend of the true colour with a fixed RGB channel rotation,
like a different camera or light; `colour_shift` sets the blend), so the shared
colour words must be partly grounded anew in every domain. The
attribute vocabulary (colour, size, texture, position, count) is shared by all
domains, and some captions name objects only generically ("shape", "object"), so
cross-task negatives are genuinely confusable. Everything is deterministic from a
seed and cached as a compressed .npz.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
from annotated_types import Ge, Interval, MinLen
from PIL import Image, ImageDraw

from ccrbench.benchmarks.base import RetrievalBenchmark, TaskSplit, TensorImages, make_benchmark
from ccrbench.io import cache_dir, write_atomic
from ccrbench.registry import register_benchmark

DOMAINS: dict[str, tuple[str, ...]] = {
    "blocks": ("square", "triangle", "diamond", "pentagon", "hexagon", "rectangle"),
    "curves": ("circle", "ellipse", "ring", "crescent", "heart", "semicircle"),
    "signs": ("star", "cross", "arrow", "plus", "bolt", "tee"),
}
Domain = Literal["blocks", "curves", "signs"]  # a key of DOMAINS, as a config type
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (45, 75, 215),
    "yellow": (235, 210, 35),
    "purple": (135, 55, 180),
    "orange": (240, 135, 25),
    "cyan": (35, 195, 205),
    "pink": (240, 115, 175),
}
COLOUR_RENDERING = ([0, 1, 2], [1, 2, 0], [2, 0, 1])  # per domain: which RGB channels a colour shows in
SIZES: dict[str, float] = {"small": 0.11, "medium": 0.16, "large": 0.22}  # radius / image side
TEXTURES = ("plain", "striped", "dotted")
ROWS, COLS = ("top", "middle", "bottom"), ("left", "center", "right")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium", "medium sized", "mid sized"),
    "large": ("large", "big", "huge"),
    "plain": ("plain", "solid", "flat"),
    "striped": ("striped", "stripy", "lined"),
    "dotted": ("dotted", "spotted", "polka dot"),
}
GENERIC = ("shape", "object", "thing", "item")


@dataclass(frozen=True)
class _Object:
    shape: str
    colour: str
    size: str
    texture: str
    row: int
    col: int


# --------------------------------------------------------------------------- rendering


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    def ring(k: int, radius: float, phase: float) -> list[tuple[float, float]]:
        return [
            (cx + radius * math.cos(phase + rot + 2 * math.pi * i / k), cy + radius * math.sin(phase + rot + 2 * math.pi * i / k))
            for i in range(k)
        ]

    def shape_from(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in points]

    if shape == "square":
        return ring(4, r, math.pi / 4)
    if shape == "triangle":
        return ring(3, r, -math.pi / 2)
    if shape == "diamond":
        return shape_from([(0, -1), (0.6, 0), (0, 1), (-0.6, 0)])
    if shape == "pentagon":
        return ring(5, r, -math.pi / 2)
    if shape == "hexagon":
        return ring(6, r, 0)
    if shape == "rectangle":
        return shape_from([(-1, -0.5), (1, -0.5), (1, 0.5), (-1, 0.5)])
    if shape == "star":
        outer, inner = ring(5, r, -math.pi / 2), ring(5, 0.42 * r, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner) for p in pair]
    if shape == "arrow":
        return shape_from([(-1, -0.25), (0.2, -0.25), (0.2, -0.65), (1, 0), (0.2, 0.65), (0.2, 0.25), (-1, 0.25)])
    if shape == "bolt":
        return shape_from([(-0.2, -1), (0.5, -1), (0.1, -0.15), (0.55, -0.15), (-0.35, 1), (-0.05, 0.15), (-0.5, 0.15)])
    if shape == "tee":
        return shape_from([(-0.9, -0.9), (0.9, -0.9), (0.9, -0.5), (0.22, -0.5), (0.22, 0.9), (-0.22, 0.9), (-0.22, -0.5), (-0.9, -0.5)])
    if shape == "heart":
        pts = []
        for i in range(24):
            t = 2 * math.pi * i / 24
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            pts.append((x / 17, y / 17))
        return shape_from(pts)
    raise KeyError(shape)


def _draw_mask(shape: str, size_px: int, cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    """Boolean [S, S] mask of one object."""
    img = Image.new("L", (size_px, size_px), 0)
    d = ImageDraw.Draw(img)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=255)
    elif shape == "ellipse":
        d.ellipse((cx - r, cy - 0.6 * r, cx + r, cy + 0.6 * r), fill=255)
    elif shape == "ring":
        d.ellipse(box, fill=255)
        d.ellipse((cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r), fill=0)
    elif shape == "crescent":
        d.ellipse(box, fill=255)
        off = 0.5 * r
        d.ellipse((cx - r + off, cy - r - 0.2 * off, cx + r + off, cy + r - 0.2 * off), fill=0)
    elif shape == "semicircle":
        d.pieslice(box, 180, 360, fill=255)
    elif shape in ("cross", "plus"):
        w = 0.28 * r
        angle = math.pi / 4 if shape == "cross" else 0.0
        for a in (angle, angle + math.pi / 2):
            c, s = math.cos(a + rot * 0.2), math.sin(a + rot * 0.2)
            pts = [(x * c - y * s, x * s + y * c) for x, y in ((-r, -w), (r, -w), (r, w), (-r, w))]
            d.polygon([(cx + x, cy + y) for x, y in pts], fill=255)
    else:
        d.polygon(_polygon(shape, cx, cy, r, rot), fill=255)
    return np.asarray(img) > 127


def _texture_mask(texture: str, size_px: int, phase: int) -> np.ndarray:
    """Where the secondary colour goes: stripes or dots, [S, S] bool."""
    y, x = np.mgrid[0:size_px, 0:size_px]
    if texture == "striped":
        return ((x + y + phase) // 3) % 2 == 0
    if texture == "dotted":
        return ((x + phase) % 5 < 2) & ((y + phase) % 5 < 2)
    return np.zeros((size_px, size_px), dtype=bool)


def _background(domain: int, size_px: int, rng: np.random.Generator) -> np.ndarray:
    """Each domain has its own visual statistics: light flat, dark gradient, noisy grey."""
    if domain % 3 == 0:
        base = rng.uniform(185, 235, size=3)
        img = np.broadcast_to(base, (size_px, size_px, 3)).copy()
        img += rng.normal(0, 4, size=(size_px, size_px, 1))
    elif domain % 3 == 1:
        top, bottom = rng.uniform(10, 60, size=3), rng.uniform(40, 100, size=3)
        t = np.linspace(0, 1, size_px)[:, None, None]
        img = np.broadcast_to(top * (1 - t) + bottom * t, (size_px, size_px, 3)).copy()
    else:
        base = rng.uniform(90, 150)
        img = base + rng.normal(0, 22, size=(size_px, size_px, 1)).repeat(3, axis=2)
        img += rng.uniform(-15, 15, size=3)
    return img


def _domain_colour(name: str, domain: int, shift: float) -> np.ndarray:
    """How a named colour shows in a domain: (1 - shift) * true colour + shift * rotated channels."""
    true = np.array(COLOURS[name], dtype=float)
    return (1 - shift) * true + shift * true[COLOUR_RENDERING[domain % 3]]


def _render(objects: list[_Object], domain: int, size_px: int, rng: np.random.Generator, colour_shift: float) -> np.ndarray:
    img = _background(domain, size_px, rng)
    cell = size_px / 3
    for obj in objects:
        r = SIZES[obj.size] * size_px * rng.uniform(0.9, 1.1)
        cx = (obj.col + 0.5) * cell + rng.uniform(-0.12, 0.12) * cell
        cy = (obj.row + 0.5) * cell + rng.uniform(-0.12, 0.12) * cell
        mask = _draw_mask(obj.shape, size_px, cx, cy, r, rng.uniform(-0.35, 0.35))
        colour = _domain_colour(obj.colour, domain, colour_shift) * rng.uniform(0.85, 1.1)
        second = colour * 0.35 if obj.texture == "striped" else np.full(3, 250.0)
        tex = _texture_mask(obj.texture, size_px, int(rng.integers(0, 6))) & mask
        img[mask] = colour
        img[tex] = second
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- captions


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _a(phrase: str) -> str:
    """The phrase with its indefinite article."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _where(obj: _Object, rng: np.random.Generator) -> str:
    row, col = ROWS[obj.row], COLS[obj.col]
    if row == "middle" and col == "center":
        return _pick(rng, ("in the center", "in the middle"))
    if row == "middle":
        return _pick(rng, (f"on the {col}", f"at the {col}"))
    if col == "center":
        return _pick(rng, (f"at the {row}", f"near the {row}"))
    return _pick(rng, (f"at the {row} {col}", f"in the {row} {col} corner"))


def _noun(obj: _Object, rng: np.random.Generator, *, size: bool, texture: bool, generic: bool = False) -> str:
    words = []
    if size:
        words.append(_pick(rng, SYNONYMS[obj.size]))
    words.append(obj.colour)
    if texture:
        words.append(_pick(rng, SYNONYMS[obj.texture]))
    words.append(_pick(rng, GENERIC) if generic else obj.shape)
    return " ".join(words)


def _relation(a: _Object, b: _Object) -> str:
    if a.col != b.col:
        return "to the left of" if a.col < b.col else "to the right of"
    return "above" if a.row < b.row else "below"


def _templates(objs: list[_Object], rng: np.random.Generator) -> list[str]:
    """Eight phrasings of one scene, from exhaustive to vague; five are kept."""
    n = len(objs)
    count = COUNT_WORDS[n]
    shapes_word = "shape" if n == 1 else "shapes"
    join = lambda parts: " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " and " + parts[-1]  # noqa: E731
    a, b = objs[0], objs[-1]
    return [
        join([f"{_a(_noun(o, rng, size=True, texture=True))} {_where(o, rng)}" for o in objs]),
        f"{count} {shapes_word} : " + join([_a(_noun(o, rng, size=False, texture=True)) for o in objs]),
        " ".join(f"{_where(o, rng)} there is {_a(_noun(o, rng, size=True, texture=False))}" for o in objs),
        f"a picture of {count} {_pick(rng, GENERIC)}" + ("s" if n > 1 else "")
        + " : " + join([_a(_noun(o, rng, size=True, texture=True, generic=True)) for o in objs]),
        join([_a(o.shape) for o in objs]),
        (f"{_a(_noun(a, rng, size=False, texture=False))} {_relation(a, b)} {_a(_noun(b, rng, size=False, texture=False))}"
         if n > 1 else f"a single {_noun(a, rng, size=True, texture=False)} {_where(a, rng)}"),
        join([f"{_a(_noun(o, rng, size=False, texture=False, generic=True))} {_where(o, rng)}" for o in objs]),
        join([f"{_pick(rng, SYNONYMS[o.texture])} {o.shape}" for o in objs]) + f" on a {_pick(rng, ('plain', 'simple', 'uniform'))} background",
    ]


# --------------------------------------------------------------------------- generation


def _scene(domain: int, rng: np.random.Generator) -> list[_Object]:
    shapes = DOMAINS[list(DOMAINS)[domain]]
    n = int(rng.choice([1, 2, 3], p=[0.25, 0.45, 0.30]))
    cells = rng.choice(9, size=n, replace=False)
    objs = [
        _Object(
            shape=_pick(rng, shapes),
            colour=_pick(rng, list(COLOURS)),
            size=_pick(rng, list(SIZES)),
            texture=_pick(rng, TEXTURES),
            row=int(c) // 3,
            col=int(c) % 3,
        )
        for c in sorted(cells)
    ]
    return objs


def generate_task(
    domain: int, count: int, *, image_size: int, seed: int, colour_shift: float = 0.5
) -> tuple[np.ndarray, list[list[str]]]:
    """Renders `count` scenes of one domain.

    Returns:
        uint8 images [count, 3, S, S] and five captions per image.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, 3, image_size, image_size), dtype=np.uint8)
    captions = []
    for i in range(count):
        objs = _scene(domain, rng)
        images[i] = _render(objs, domain, image_size, rng, colour_shift).transpose(2, 0, 1)
        pool = _templates(objs, rng)
        captions.append([pool[j] for j in rng.choice(len(pool), size=5, replace=False)])
    return images, captions


def _load_or_generate(
    domain: int, split: str, count: int, image_size: int, seed: int, colour_shift: float
) -> tuple[np.ndarray, list[list[str]]]:
    key = json.dumps(
        {"v": 3, "domain": domain, "split": split, "n": count, "size": image_size, "seed": seed, "shift": colour_shift}
    )
    path = cache_dir() / "shapes" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as f:
            return f["images"], json.loads(str(f["captions"]))
    split_seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
    images, captions = generate_task(domain, count, image_size=image_size, seed=split_seed, colour_shift=colour_shift)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.savez_compressed(f, images=images, captions=np.array(json.dumps(captions))), binary=True)
    return images, captions


@register_benchmark("shapes")
def shapes_benchmark(
    *,
    tasks: Annotated[tuple[Domain, ...], MinLen(1)] = tuple(DOMAINS),
    train_images: Annotated[int, Ge(1)] = 1000,
    test_images: Annotated[int, Ge(1)] = 500,
    val_images: Annotated[int, Ge(1)] | None = None,
    image_size: Annotated[int, Ge(1)] = 64,
    colour_shift: Annotated[float, Interval(ge=0, le=1)] = 0.5,
    seed: Annotated[int, Ge(0)] = 0,
) -> RetrievalBenchmark:
    """Built-in benchmark: one task per shape domain, no download needed.

    Args:
        tasks: domains in training order, from "blocks", "curves", "signs".
        train_images: training images per task (5 captions each).
        test_images: test (indexed) images per task (5 captions each).
        val_images: validation images per task (None: as many as test images), drawn from
            the same generator as train and test with a seed of their own (disjoint images),
            evaluated instead of the test images with `eval.split: val`.
        image_size: side of the rendered square images, in pixels.
        colour_shift: how far each domain's colour rendering departs from the first
            domain's (0: identical, 1: a full RGB channel rotation).
        seed: generator seed; the same seed gives the same data.
    """
    unknown = [t for t in tasks if t not in DOMAINS]
    if unknown or not tasks:
        raise ValueError(f"shapes: unknown domain(s) {unknown}; available: {', '.join(DOMAINS)}")
    counts = {"train": train_images, "test": test_images, "val": test_images if val_images is None else val_images}
    splits: dict[str, list[TaskSplit]] = {split: [] for split in counts}
    next_id = 0
    # validation ids come after every train and test id, so those stay as they were before it existed
    for name, split in [*((n, s) for n in tasks for s in ("train", "test")), *((n, "val") for n in tasks)]:
        images, captions = _load_or_generate(list(DOMAINS).index(name), split, counts[split], image_size, seed, colour_shift)
        splits[split].append(
            TaskSplit(
                images=TensorImages(torch.from_numpy(images)),
                captions=tuple(tuple(c) for c in captions),
                image_ids=tuple(range(next_id, next_id + counts[split])),
            )
        )
        next_id += counts[split]
    return make_benchmark(train=splits["train"], test=splits["test"], val=splits["val"], task_names=tasks)
