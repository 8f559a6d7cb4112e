"""Images mode's loader against the model it feeds: images/s of each image source and of one
training step, and the share of a training loop spent waiting for data.

    python scripts/bench_loader.py [--images 256] [--size 224] [--repeats 3] [--device cpu|cuda] [--quick]

On a synthetic COCO-like set written by the script (640x480 JPEGs, quality 90, natural-image-
like content: 1/f noise fields with a few sharp-edged objects; the mean file size is printed
beside COCO 2014's ~160 KB), in a DataLoader of batches of 64 with 0, 1 and 2 workers (kept
alive, one warm-up pass; files in the page cache, as from the second epoch of a run):

- pil: today's path (`FileImages`: PIL with JPEG draft scaling, resize, centre crop, float);
- prepared: the prepared store (`ccrbench data prepare`, memory-mapped uint8 rows, delivered
  as uint8 batches: the float conversion happens on the training device, on a GPU after the
  copy; a separate row times it on the CPU, where it is the step's first operation);
- jpeg-bytes+decode_jpeg: the files' bytes read by the workers, decoded in batches by
  torchvision's `decode_jpeg` where the batch goes (`benchmark.decode: cuda`; on the CPU: its
  fallback), with `--device cuda`: nvjpeg, resized on the GPU.

The same at the demo's 64 px with 0 workers (pil and prepared). Then the images/s one training
step consumes (forward, backward, optimizer step): the demo's model (configs/shapes_finetune.yaml,
64 px, batch 128) and a ViT-B/32-sized image tower (timm vit_base_patch32_224, random weights,
224 px, batch 32) on the CPU; with `--device cuda`, open_clip's CLIP ViT-B/32 (both towers,
random weights) at batch 256 in bf16. Last, the data-wait share, measured as the runner's
DataWaitMeter measures it (the time between steps spent fetching the next batch and moving it),
of the demo model's loop (64 px) on the prepared store and on PIL, of the ViT tower's (224 px,
batch 8: the share does not depend on the batch size, the wait and the step both scale with it),
and on the GPU of the CLIP step fed by the store and by nvjpeg.

Goals (issue 28): the prepared store >= 20x the PIL path per core (both with 0 workers: one
core), and a data-wait share <= 5 %. Every figure is min / median of --repeats. Prints
`figure | goal | measured | ratio` lines (`main()` returns them for `make bench`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_format import print_table, stats  # noqa: E402

from ccrbench.benchmarks.files.images import FileImages, JpegFiles  # noqa: E402
from ccrbench.benchmarks.files.prepared import PreparedImages, Preparing, prepare_store  # noqa: E402
from ccrbench.pixels import collate_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
DEMO_SIZE = 64  # configs/shapes_finetune.yaml's image_size
COCO_MEAN_KB = 13.5e9 / 82_783 / 1e3  # train2014.zip: 13.5 GB for 82,783 images


def photo(rng: np.random.Generator, width: int = 640, height: int = 480) -> Image.Image:
    """A natural-image-like picture: 1/f amplitude noise (luminance and two weaker colour fields)
    with a few flat objects with sharp edges, as photos have."""
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(width, height))
    fields = []
    for _ in range(3):
        spectrum = amplitude * (rng.standard_normal(amplitude.shape) + 1j * rng.standard_normal(amplitude.shape))
        field = np.fft.irfft2(spectrum, s=(height, width))
        fields.append((field - field.mean()) / field.std())
    luminance, red_green, blue_yellow = fields
    rgb = 120 + 50 * luminance[..., None] + np.stack([18 * red_green, -10 * red_green + 8 * blue_yellow, -20 * blue_yellow], -1)
    y, x = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, rx, ry = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 160), rng.uniform(20, 120)
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1
        rgb[inside] = 0.35 * rgb[inside] + 0.65 * rng.uniform(20, 235, 3)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def write_photos(paths: list[Path], *, seed: int = 0) -> None:
    """Writes a photo at each path that does not exist yet (quality 90, the seed and index decide it)."""
    for k, path in enumerate(paths):
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            photo(np.random.default_rng([seed, k])).save(path, "JPEG", quality=90)


def images_per_second(dataset: Dataset, *, workers: int, repeats: int, device: torch.device | None) -> list[float]:
    """Passes over `dataset` in batches of BATCH, each moved to `device` (where JPEG batches are decoded and
    uint8 ones become float) unless it is None (the loader's output as it is); images/s of each pass."""
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0, collate_fn=collate_images)
    rates = []
    for timed in [False] + [True] * repeats:  # one warm-up pass: workers started, files in the page cache
        start = time.perf_counter()
        for batch in loader:
            if device is not None:
                batch.to(device)
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        if timed:
            rates.append(len(dataset) / (time.perf_counter() - start))
    return rates


def demo_step(size: int, batch: int) -> tuple[Callable[[torch.Tensor], None], int]:
    """One training step of the demo's model (configs/shapes_finetune.yaml, image size `size`) on a batch of images."""
    from ccrbench.config import load_config
    from ccrbench.registry import LOSSES
    from ccrbench.models.build import model_from_config

    config = load_config(REPO / "configs" / "shapes_finetune.yaml", [])
    captions = tuple(f"a red {w} next to a blue {w}" for w in ("square", "circle", "star", "ring"))
    model = model_from_config(config.model, captions * 4)
    loss = LOSSES.build(config.loss.name, config.loss.options)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.train.lr)
    text = model.tokenize([captions[k % 4] for k in range(batch)])
    ids = torch.arange(batch)

    def step(images: torch.Tensor) -> None:
        image_emb, text_emb = model(images, text)
        optimizer.zero_grad(set_to_none=True)
        loss(image_emb, text_emb[: len(images)], ids[: len(images)], **model.logit_inputs()).backward()
        optimizer.step()

    return step, batch


def vit_step(batch: int) -> tuple[Callable[[torch.Tensor], None], int]:
    """One training step of a ViT-B/32 image tower (timm, random weights, 512-d output, AdamW)."""
    import timm

    model = timm.create_model("vit_base_patch32_224", pretrained=False, num_classes=512)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(images: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        model(images).float().pow(2).mean().backward()
        optimizer.step()

    return step, batch


def clip_step(batch: int, device: torch.device) -> tuple[Callable[[torch.Tensor], None], int]:
    """One training step of CLIP ViT-B/32 (open_clip, both towers, random weights) in bf16 autocast."""
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    text = torch.randint(0, 49408, (batch, 77), device=device)
    labels = torch.arange(batch, device=device)

    def step(images: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            image_emb, text_emb, scale = model(images, text[: len(images)])
            logits = scale * image_emb @ text_emb.T
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[: len(images)])
        loss.backward()
        optimizer.step()

    return step, batch


def step_rate(step: Callable[[torch.Tensor], None], batch: int, size: int, repeats: int, device: torch.device) -> list[float]:
    """Images/s one training step consumes on random images (after one warm-up step)."""
    images = torch.rand(batch, 3, size, size, device=device)
    rates = []
    for timed in [False] + [True] * repeats:
        start = time.perf_counter()
        step(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if timed:
            rates.append(batch / (time.perf_counter() - start))
    return rates


def wait_share(dataset: Dataset, step: Callable[[torch.Tensor], None], batch: int, *, workers: int, steps: int, device: torch.device) -> float:
    """The share of a training loop's time spent fetching the next batch and moving it to `device`
    (DataWaitMeter's measure) over `steps` steps of one long epoch (reshuffled passes over `dataset`,
    as an epoch of a large set), after one warm-up step (the workers' start)."""
    order = RandomSampler(dataset, num_samples=(steps + 1) * batch)  # passes over the set, each reshuffled
    loader = DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers, collate_fn=collate_images,
                        pin_memory=device.type == "cuda")  # fmt: skip
    waiting = total = 0.0
    last = time.perf_counter()
    for k, images in enumerate(loader):
        images = images.to(device, non_blocking=True)
        now = time.perf_counter()
        step(images)
        if device.type == "cuda" and k == 0:
            torch.cuda.synchronize()
        end = time.perf_counter()
        if k > 0:
            waiting, total = waiting + now - last, total + end - last
        last = end
    if device.type == "cuda":
        torch.cuda.synchronize()
        total += time.perf_counter() - last
    return waiting / total


class _Lines(list):
    """The table's lines, each also shown on stderr as soon as it is measured (the whole table takes minutes)."""

    def append(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        super().append(line)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="synthetic JPEGs (default 256)")
    parser.add_argument("--size", type=int, default=224, help="image side S of the run (default 224)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: also the nvjpeg rows and the CLIP step")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/ccrbench_bench_loader"), help="where the JPEGs and the store go")
    parser.add_argument("--quick", action="store_true", help="skip the ViT-B/32 step and the data-wait loops")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    paths = [args.folder / "images" / f"{k:06d}.jpg" for k in range(args.images)]
    write_photos(paths)
    kb = statistics.mean(p.stat().st_size for p in paths) / 1e3
    load = os.getloadavg()
    lines = _Lines()
    lines.append(f"synthetic JPEGs: 640x480, quality 90 | ~{COCO_MEAN_KB:.0f} KB each (COCO 2014) | {args.images} files, mean {kb:.0f} KB | load {load[0]:.1f} (1-min average; {os.cpu_count()} cores)")

    def prepared(size: int, workers: int) -> PreparedImages:
        store = args.folder / f"prepared-{size}px"
        for name in ("meta.json", "status.npy", "images.npy"):
            (store / name).unlink(missing_ok=True)
        start = time.perf_counter()
        prepare_store(store, split="bench", ids=list(range(args.images)), paths=paths, image_size=size,
                      on_bad_image="fail", settings=Preparing(workers=workers, progress=False, report=lambda line: None))  # fmt: skip
        lines.append(f"prepare {args.images} images at {size}px, --workers {workers} | once | {args.images / (time.perf_counter() - start):.0f} img/s | -")
        return PreparedImages(file=store / "images.npy")

    prepared(args.size, 2)
    sources = {
        "pil": FileImages(paths=paths, image_size=args.size),
        "prepared": prepared(args.size, 0),
        "jpeg-bytes+decode_jpeg": JpegFiles(paths=paths, image_size=args.size),
    }
    small = {"pil": FileImages(paths=paths, image_size=DEMO_SIZE), "prepared": prepared(DEMO_SIZE, 0)}
    targets = [torch.device("cpu")] + ([device] if device.type == "cuda" else [])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core: a worker's one thread, or the main process's with 0 workers
    per_core: dict[tuple[str, str, int], float] = {}
    for target in targets:
        runs = [(name, dataset, args.size, (0, 1, 2)) for name, dataset in sources.items()]
        runs += [(name, dataset, DEMO_SIZE, (0,)) for name, dataset in small.items()] if target.type == "cpu" else []
        for name, dataset, size, worker_counts in runs:
            if target.type == "cuda" and name == "pil":
                continue  # decoded on the CPU either way: its CPU row stands
            label = name.replace("decode_jpeg", "nvjpeg") if target.type == "cuda" else name
            moved = target.type == "cuda" or name.startswith("jpeg")  # JPEG bytes are decoded there
            for workers in worker_counts:
                rates = images_per_second(dataset, workers=workers, repeats=args.repeats, device=target if moved else None)
                if workers == 0:
                    per_core[name, target.type, size] = statistics.median(rates)
                ratio = statistics.median(rates) / per_core["pil", "cpu", size]
                goal = ">= 20x pil per core" if (name, workers) == ("prepared", 0) else "-"
                lines.append(f"loader {label}{' -> ' + target.type if moved else ''}, {workers} workers, {size}px | {goal} | {stats(rates, 'img/s', 0)} | {ratio:.1f}x pil (0 workers)")
            if name == "prepared" and target.type == "cpu":
                rates = images_per_second(dataset, workers=0, repeats=args.repeats, device=target)
                ratio = statistics.median(rates) / per_core["pil", "cpu", size]
                lines.append(f"loader prepared + float conversion on the CPU (the step's first op there), 0 workers, {size}px | - | {stats(rates, 'img/s', 0)} | {ratio:.1f}x pil (0 workers)")

    torch.set_num_threads(threads)  # a training step uses every core
    cpu = torch.device("cpu")
    demo, demo_batch = demo_step(DEMO_SIZE, 128)
    rates = step_rate(demo, demo_batch, DEMO_SIZE, args.repeats, cpu)
    lines.append(f"training step, demo model (small_cnn + BiGRU), batch {demo_batch}, {DEMO_SIZE}px, CPU | - | {stats(rates, 'img/s', 0)} | -")
    if not args.quick:
        vit, vit_batch = vit_step(32)
        rates = step_rate(vit, vit_batch, 224, args.repeats, cpu)
        lines.append(f"training step, ViT-B/32 image tower (timm), batch {vit_batch}, 224px, CPU fp32 | - | {stats(rates, 'img/s', 1)} | -")
        loops = [("demo model", demo, demo_batch, small, name, workers, 6) for name, workers in (("prepared", 0), ("pil", 0), ("pil", 2))]
        if args.size == 224:
            loops += [("ViT-B/32 tower", vit, 8, sources, name, 0, 3) for name in ("prepared", "pil")]  # batch 8: minutes on a CPU
        for model, step, batch, data, name, workers, steps in loops:
            shares = [100 * wait_share(data[name], step, batch, workers=workers, steps=steps, device=cpu) for _ in range(args.repeats)]
            size = DEMO_SIZE if data is small else args.size
            lines.append(f"data-wait share, {model} loop on {name}, {workers} workers, {size}px, CPU | <= 5 % | {stats(shares, '%')} | {statistics.median(shares) / 5:.2f} of goal")
    if device.type == "cuda":
        clip, clip_batch = clip_step(256, device)
        rates = step_rate(clip, clip_batch, 224, args.repeats, device)
        lines.append(f"training step, CLIP ViT-B/32 (open_clip), batch {clip_batch}, 224px, bf16, {torch.cuda.get_device_name()} | - | {stats(rates, 'img/s', 0)} | -")
        if args.size == 224:
            for name in ("prepared", "jpeg-bytes+decode_jpeg"):
                workers = min(8, os.cpu_count() or 1)
                shares = [100 * wait_share(sources[name], clip, clip_batch, workers=workers, steps=8, device=device) for _ in range(args.repeats)]
                label = name.replace("decode_jpeg", "nvjpeg")
                lines.append(f"data-wait share, CLIP ViT-B/32 loop on {label}, {workers} workers, GPU | <= 5 % | {stats(shares, '%')} | {statistics.median(shares) / 5:.2f} of goal")
    lines.append(f"machine load after the figures | - | {os.getloadavg()[0]:.1f} (1-min average) | -")
    return print_table(list(lines))


if __name__ == "__main__":
    main()
