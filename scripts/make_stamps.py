"""Writes the Tux Paint stamps as an image-caption CSV for the `image_captions` benchmark.

Debian's `tuxpaint-stamps-default` (GPL-2) holds photographs cut out on transparent
backgrounds (PNG) and drawings (SVG), each `<stamp>.png` beside a `<stamp>.txt` whose
first line is an English caption. This script keeps the photographs with a caption
(PNG files outside `cartoon/` folders), composites each onto a white background, scales
its longer side to `--size` and saves it as JPEG under `OUT/images/<category>/...`;
`OUT/stamps.csv` lists `image,caption,category` (category: the top-level folder).

    python scripts/make_stamps.py --out data/stamps
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

STAMPS = Path("/usr/share/tuxpaint/stamps")


def stamp_rows(stamps: Path) -> list[tuple[Path, str, str]]:
    """(png, caption, category) of every captioned photograph, sorted by path."""
    rows = []
    for png in sorted(stamps.rglob("*.png")):
        text = png.with_suffix(".txt")
        if "cartoon" in png.relative_to(stamps).parts or not text.is_file():
            continue
        caption = " ".join(text.read_text(encoding="utf-8", errors="replace").splitlines()[0].split()) if text.stat().st_size else ""
        if caption:
            rows.append((png, caption, png.relative_to(stamps).parts[0]))
    return rows


def flatten(png: Path, out: Path, size: int) -> None:
    """The stamp on white, longer side scaled down to `size`, as JPEG."""
    with Image.open(png) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    rgb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(out, quality=92)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stamps", type=Path, default=STAMPS, help="the stamps folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("data/stamps"), help="output folder (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="longer side of the saved images (default: %(default)s)")
    args = parser.parse_args()
    if not args.stamps.is_dir():
        raise SystemExit(f"no folder {args.stamps}: apt-get install tuxpaint-stamps-default, or pass --stamps")
    rows = stamp_rows(args.stamps)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "stamps.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption", "category"])
        for png, caption, category in rows:
            relative = Path("images") / png.relative_to(args.stamps).with_suffix(".jpg")
            flatten(png, args.out / relative, args.size)
            writer.writerow([relative.as_posix(), caption, category])
    print(f"{len(rows)} stamps -> {args.out / 'stamps.csv'}")


if __name__ == "__main__":
    main()
