"""GPU confirmation (issue 29): runs every CUDA path of ccrbench once and records what it measures.

    python scripts/gpu_check.py [--out DIR] [--work DIR] [--only CHECK ...]   # on a GPU: meant to take <= 8 minutes
    python scripts/gpu_check.py --dry-run                                    # any CPU: tiny sizes, same code

`--out` (default `$OUT`, else results/gpu) receives four files: summary.json (every figure, the
device, torch/CUDA/cuDNN versions, the command), summary.md (the same as tables), gpu_check.log
(what was printed) and runs.tar.gz (each run's results.json, results.md, config.yaml and printed
log). Run directories and the random model files go to `--work` (default runs/gpu_check).
The checks, in this order (each one's failure is recorded, the others still run):

- demo: `ccrbench run --config configs/shapes_finetune.yaml --set device=cuda` for finetune,
  EWC and MAS (importance pass through cuDNN's RNN backward), in fp32 then
  `train.precision: bf16`, keeping the printed data-wait / peak-memory lines;
- fp16: the demo's model with `train.precision: fp16` for `--fp16-steps` steps, the gradient
  scaler's scale after every step (changes and skipped steps recorded);
- towers: CLIP ViT-B/32- and SigLIP-base/16-sized towers with random weights (no download),
  training images/s at batch 256 in bf16 and peak memory, top 2 blocks and all blocks trained,
  against the parameter-count estimate (weights + gradients + Adam moments; the README's for CLIP);
- ranks: `retrieval_ranks` at 200K images x 1M captions x 256 on the GPU against the same tiled
  matrix product alone (scripts/bench_metrics.py), time and peak GPU memory;
- cpu: the demo runs again on the CPU in fp32: how much every R@K differs from the GPU runs.

`--dry-run` (= `--device cpu --quick`) runs the same functions at tiny sizes in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tarfile
import time
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the towers are random models saved here

import torch
from avalanche.core import SupervisedPlugin

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_metrics  # noqa: E402  (scripts/ is on the path)

from ccrbench.benchmarks.base import RetrievalBenchmark  # noqa: E402
from ccrbench.build import build_learner, learn_vocabulary, seed_everything  # noqa: E402
from ccrbench.cli import main as ccrbench_main  # noqa: E402
from ccrbench.config import RunConfig, load_config  # noqa: E402
from ccrbench.evaluation.protocol import DIRECTIONS  # noqa: E402
from ccrbench.evaluation.retrieval import DEFAULT_TILE, FUSED_MIN_TILES, retrieval_ranks  # noqa: E402
from ccrbench.io import read_json  # noqa: E402
from ccrbench.provenance import machine, versions  # noqa: E402
from ccrbench.registry import BENCHMARKS  # noqa: E402
from ccrbench.training.throughput import DataWaitMeter  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "shapes_finetune.yaml"
STRATEGIES = ("finetune", "ewc", "mas")
# --quick: the demo at tiny sizes (one task: the importance pass still runs after it)
QUICK_DEMO = [
    "benchmark.tasks=[blocks]",
    "benchmark.train_images=8",
    "benchmark.test_images=4",
    "benchmark.image_size=32",
    "model.image_encoder.width=4",
    "model.image_encoder.output_dim=16",
    "model.text_encoder.word_dim=8",
    "model.text_encoder.hidden_dim=8",
    "model.embed_dim=8",
    "train.epochs=1",
    "train.batch_size=8",
    "eval.batch_size=4",
]
# README "GPU checklist": the CLIP ViT-B/32 built here, parameters and those of its top 2 blocks per tower
README_CLIP = {"params_m": 151.3, "top2_trainable_m": 21.1}
GIB = 2**30


# --------------------------------------------------------------- device helpers
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last `reset_peak`, GiB (None off CUDA)."""
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def allocated_gib(device: torch.device) -> float | None:
    return torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float | None]:
    """(fn's result, wall seconds with the device synchronised on both sides, peak GiB during it)."""
    synchronize(device)
    reset_peak(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start, peak_gib(device)


def free_memory(device: torch.device) -> None:
    """Returns the GPU memory of dropped models and tensors (nothing to do on the CPU)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def environment(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: the device, torch / CUDA / cuDNN versions, math settings."""
    cuda = device.type == "cuda"
    props = torch.cuda.get_device_properties(device) if cuda else None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None  # a copy of the tree without .git
    return {
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({machine()['cpu']})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_enabled": torch.backends.cudnn.enabled,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(device))) if cuda else None,
        "gpu_memory_gib": props.total_memory / GIB if props else None,
        "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "git_commit": commit,
        "versions": versions(),
        "machine": {k: v for k, v in machine().items() if k != "torch_config"},
    }


class Tee(io.TextIOBase):
    """Writes to several text streams (the console and a log file)."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


# --------------------------------------------------------------- demo runs
def demo_run(work: Path, name: str, sets: list[str]) -> dict[str, Any]:
    """`ccrbench run` of the demo config with `sets`: exit code, printed data-wait / stage lines, results.

    Its printed output goes to the console and work/<name>.log (progress bars to the log only).
    """
    out = work / name
    options = ["--out", str(out), "--overwrite", *(a for s in sets for a in ("--set", s))]
    argv = ["run", "--config", str(DEMO), *options]
    command = f"ccrbench {shlex.join(['run', '--config', 'configs/shapes_finetune.yaml', *options])}"
    printed = io.StringIO()
    with open(work / f"{name}.log", "w") as log:
        log.write(f"$ {command}\n")
        with contextlib.redirect_stdout(Tee(sys.stdout, log, printed)), contextlib.redirect_stderr(log):
            try:
                code, error = ccrbench_main(argv), None
            except Exception:  # e.g. a CUDA error: recorded, the next runs still run
                code, error = None, traceback.format_exc()
                log.write(error)
    lines = [line for line in printed.getvalue().splitlines() if line.startswith(("experience ", "stage "))]
    record: dict[str, Any] = {"command": command, "exit_code": code, "printed": lines, **({"error": error} if error else {})}
    if code == 0:
        results = read_json(out / "results.json")
        record["stage_seconds"] = results["stage_seconds"]
        record["final_all_tasks"] = {k: v for k, v in results["final"]["reindex"]["all"].items() if re.fullmatch(r"(i2t|t2i)_r\d+", k)}
    return record


def demo_check(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    runs = {}
    for precision in ("fp32", "bf16"):
        for strategy in args.strategies:
            sets = [f"device={device.type}", f"strategy={strategy}", f"train.precision={precision}", *args.demo_sets]
            runs[f"{device.type}_{precision}_{strategy}"] = demo_run(work, f"{device.type}_{precision}_{strategy}", sets)
    return {"runs": runs, "failed": [name for name, r in runs.items() if r["exit_code"] != 0]}


def recall_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Every R@K of two runs' results (each stage, both policies, each task and aggregate) compared:
    the largest and the mean absolute difference in points, and where the largest is."""
    diffs = []
    for stage_a, stage_b in zip(a["stages"], b["stages"], strict=True):
        for policy, tasks in stage_a["metrics"].items():
            for task, values in tasks.items():
                for key, value in values.items():
                    if re.fullmatch(r"(i2t|t2i)_r\d+", key):
                        where = f"stage {stage_a['stage']} {policy} {task} {key}"
                        diffs.append((abs(value - stage_b["metrics"][policy][task][key]), where))
    worst = max(diffs)
    return {
        "compared": len(diffs),
        "max_abs_points": worst[0],
        "where": worst[1] if worst[0] > 0 else None,
        "mean_abs_points": statistics.fmean(d for d, _ in diffs),
    }


def cpu_check(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """The demo's fp32 runs on the CPU, every R@K compared with the device's fp32 and bf16 runs."""
    runs, differences = {}, {}
    for strategy in args.strategies:
        name = f"cpu_reference_{strategy}"
        runs[name] = demo_run(work, name, ["device=cpu", f"strategy={strategy}", "train.precision=fp32", *args.demo_sets])
        if runs[name]["exit_code"] != 0:
            continue
        reference = read_json(work / name / "results.json")
        for precision in ("fp32", "bf16"):
            other = work / f"{device.type}_{precision}_{strategy}" / "results.json"
            if other.exists():
                differences[f"{strategy} {precision}"] = recall_differences(read_json(other), reference)
    return {"runs": runs, "differences_vs_cpu": differences, "failed": [name for name, r in runs.items() if r["exit_code"] != 0]}


# --------------------------------------------------------------- fp16 with the gradient scaler
class ScaleRecorder(SupervisedPlugin):
    """The gradient scaler's scale and the loss after every training step (one sync per step)."""

    def __init__(self) -> None:
        super().__init__()
        self.scales: list[float] = []
        self.losses: list[float] = []

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.scales.append(strategy.scaler.get_scale())
        self.losses.append(float(strategy.loss))


def fp16_check(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """The demo's learner in fp16 (autocast + GradScaler) trained task after task until `--fp16-steps` steps."""
    config = load_config(DEMO, [f"device={device.type}", "train.precision=fp16", *args.demo_sets])
    seed_everything(config.seed)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    learner = build_learner(config, benchmark, None, directions=DIRECTIONS, progress=False)
    strategy, recorder = learner.strategy, ScaleRecorder()
    strategy.plugins.append(recorder)
    initial = strategy.scaler.get_scale()
    trained = []
    for experience in benchmark.train_stream:
        learn_vocabulary(strategy.model, benchmark.task_captions[experience.task_label])
        _, seconds, _ = timed(lambda: strategy.train(experience), device)
        trained.append(experience.task_label)
        if len(recorder.scales) >= args.fp16_steps:
            break
    test = {exp.task_label: exp for exp in benchmark.eval_stream(config.eval.split)}
    strategy.eval([test[t] for t in trained])
    scales = [initial, *recorder.scales]
    changes = [{"step": i, "from": a, "to": b} for i, (a, b) in enumerate(zip(scales, scales[1:]), start=1) if a != b]
    meter = next(p for p in strategy.plugins if isinstance(p, DataWaitMeter))
    first, last = recorder.losses[:10], recorder.losses[-10:]
    return {
        "steps": len(recorder.scales),
        "tasks_trained": trained,
        "initial_scale": initial,
        "final_scale": scales[-1],
        "scale_changes": changes,
        "skipped_steps": sum(c["to"] < c["from"] for c in changes),  # the scaler halves the scale when it skips a step
        "growth_interval": strategy.scaler.get_growth_interval(),
        "loss_first_10_mean": statistics.fmean(first),
        "loss_last_10_mean": statistics.fmean(last),
        "all_losses_finite": all(map(math.isfinite, recorder.losses)),
        "all_tasks_after": {k: v for k, v in learner.metrics.stages[-1]["metrics"]["reindex"]["all"].items() if re.fullmatch(r"(i2t|t2i)_r\d+", k)},
        "data_wait": [str(h) for h in meter.history],
    }


# --------------------------------------------------------------- CLIP / SigLIP towers
def word_tokenizer(captions: list[str]) -> Any:
    """A word-level tokenizer of `captions` ([CLS] words [SEP], lower case), as a transformers tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.train_from_iterator(captions, trainers.WordLevelTrainer(special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[(t, tok.token_to_id(t)) for t in special[2:]])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")


def save_random_model(family: str, path: Path, captions: list[str], *, quick: bool) -> None:
    """A CLIP ViT-B/32- or SigLIP-base/16-sized model with random weights (tiny with `quick`), its
    default image processor and a word-level tokenizer of `captions` (nothing downloaded), saved
    like a hub model into `path`. The vocabulary sizes stay the models' own (the parameter counts
    are theirs); the tokenizer uses its first ids."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, SiglipConfig, SiglipImageProcessor, SiglipModel

    tokenizer = word_tokenizer(captions)
    text: dict[str, Any] = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    vision: dict[str, Any] = {}
    if quick:
        tiny = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
        text.update(tiny, vocab_size=len(tokenizer), max_position_embeddings=24)
        vision.update(tiny, image_size=32, patch_size=8)
    torch.manual_seed(0)
    if family == "clip":  # CLIPConfig's defaults are ViT-B/32's
        model, processor = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=tower_width(family, quick))), CLIPImageProcessor()
    else:  # SiglipConfig's defaults are siglip-base-patch16-224's
        model, processor = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)), SiglipImageProcessor()
    for part in (model, tokenizer, processor):
        part.save_pretrained(path)


def tower_width(family: str, quick: bool) -> int:
    """The towers' output width: CLIP's projection, SigLIP's hidden size (tiny with `quick`)."""
    return {"clip": 8 if quick else 512, "siglip": 16 if quick else 768}[family]


def tower_config(args: argparse.Namespace, device: torch.device, model_dir: Path, family: str, top_blocks: int | None) -> RunConfig:
    """The demo config with both towers of the model in `model_dir`, batch 256 in bf16, one task of 224x224 images."""
    towers = {
        "image_encoder": {"name": "hf_clip_image", "model": str(model_dir), "train_top_blocks": top_blocks},
        "text_encoder": {"name": "hf_clip_text", "model": str(model_dir), "train_top_blocks": top_blocks},
    }
    loss = {"name": "infonce", "temperature": "pretrained", "learnable": True} if family == "clip" else {"name": "siglip", "temperature": "pretrained", "bias": "pretrained"}
    return load_config(
        DEMO,
        [
            f"device={device.type}",
            "benchmark.tasks=[blocks]",
            f"benchmark.train_images={4 if args.quick else 256}",  # 5 captions each: 1280 pairs, 5 steps of 256
            "benchmark.test_images=4",
            f"benchmark.image_size={32 if args.quick else 224}",
            *(f"model.{k}={json.dumps(v)}" for k, v in towers.items()),  # JSON is YAML
            f"model.embed_dim={tower_width(family, args.quick)}",
            "model.projection=identity",
            f"loss={json.dumps(loss)}",
            f"train.batch_size={16 if args.quick else 256}",
            f"train.epochs={1 if args.quick else 2}",
            "train.lr=1e-5",
            "train.grad_clip=1.0",
            "train.precision=bf16",
        ],
    )


def tower_run(device: torch.device, config: RunConfig, benchmark: RetrievalBenchmark) -> dict[str, Any]:
    """Both towers trained through the runner's learner: a warm-up `train` call, then a timed one."""
    seed_everything(config.seed)
    learner = build_learner(config, benchmark, None, directions=DIRECTIONS, progress=False)
    strategy, experience = learner.strategy, benchmark.train_stream[0]
    params = sum(p.numel() for p in strategy.model.parameters())
    trainable = sum(p.numel() for group in strategy.optimizer.param_groups for p in group["params"])
    _, warmup_s, _ = timed(lambda: strategy.train(experience), device)  # cuBLAS / cuDNN / allocator warm-up
    _, seconds, peak = timed(lambda: strategy.train(experience), device)
    meter = next(p for p in strategy.plugins if isinstance(p, DataWaitMeter))
    steps = meter.history[-1].steps
    # fp32 weights, and per trained parameter its gradient and Adam's two moments (README's estimate)
    weights_gib, states_gib = params * 4 / GIB, trainable * 12 / GIB
    return {
        "train_top_blocks": config.model.image_encoder.options["train_top_blocks"],
        "batch_size": config.train.batch_size,
        "params": params,
        "trainable": trainable,
        "estimate_weights_gib": weights_gib,
        "estimate_grads_adam_gib": states_gib,
        "peak_gib": peak,
        "rest_of_peak_gib": None if peak is None else peak - weights_gib - states_gib,  # activations, bf16 weight copies, batch
        "steps": steps,
        "seconds": seconds,
        "warmup_seconds": warmup_s,
        "images_per_s": steps * config.train.batch_size / seconds,
        "data_wait": str(meter.history[-1]),
    }


def towers_check(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """Each family with its top 2 blocks trained and with all (quick: CLIP top 2, SigLIP all)."""
    variants = [("clip", 2), ("siglip", None)] if args.quick else [(f, b) for f in ("clip", "siglip") for b in (2, None)]
    runs, saved = [], set()
    for family, top_blocks in variants:
        model_dir = work / f"random_{family}"
        config = tower_config(args, device, model_dir, family, top_blocks)
        benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
        if family not in saved:
            save_random_model(family, model_dir, list(benchmark.train_captions), quick=args.quick)
            saved.add(family)
        runs.append({"family": family, **tower_run(device, config, benchmark)})
        free_memory(device)  # the model of tower_run, gone with its frame
        print(f"towers: {family} train_top_blocks={top_blocks}: {runs[-1]['images_per_s']:.0f} images/s, peak {fmt(runs[-1]['peak_gib'])} GiB", flush=True)
    return {"readme_clip": README_CLIP, "runs": runs}


# --------------------------------------------------------------- retrieval_ranks at scale
def ranks_check(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """retrieval_ranks(N images x M captions x D) on the device against the same tiled product alone."""
    n, m, d = (1100, 5000, 16) if args.quick else (args.ranks_images, 1_000_000, 256)  # quick: partial tiles too
    images, texts, t2i = (x.to(device) for x in bench_metrics.embeddings(torch.arange(m) % n, d))
    synchronize(device)
    inputs = allocated_gib(device)
    rows, cols = DEFAULT_TILE
    fused = (n // rows) * (m // cols) >= FUSED_MIN_TILES  # what fused=None chooses
    compile_s = None
    if fused:  # compiled once per process before the timing (as scripts/bench_metrics.py does)
        _, compile_s, _ = timed(lambda: retrieval_ranks(images[:rows], texts[: 4 * cols], t2i[: 4 * cols] % rows, fused=True), device)
    product = [timed(lambda: bench_metrics.tiled_product(images, texts), device) for _ in range(2)]
    ranks, ranks_s, ranks_peak = timed(lambda: retrieval_ranks(images, texts, t2i), device)
    product_s = min(s for _, s, _ in product)
    return {
        "images": n,
        "captions": m,
        "dim": d,
        "tile": list(DEFAULT_TILE),
        "fused": fused,
        "compile_seconds": compile_s,
        "inputs_gib": inputs,
        "product_seconds": [s for _, s, _ in product],
        "product_peak_gib": product[-1][2],
        "ranks_seconds": ranks_s,
        "ranks_peak_gib": ranks_peak,
        "ratio": ranks_s / product_s,
        "i2t_r1": float((ranks["i2t"] < 1).float().mean() * 100),
        "t2i_r1": float((ranks["t2i"] < 1).float().mean() * 100),
    }


CHECKS: dict[str, Callable[[argparse.Namespace, torch.device, Path], dict[str, Any]]] = {
    "demo": demo_check,
    "fp16": fp16_check,
    "towers": towers_check,
    "ranks": ranks_check,
    "cpu": cpu_check,
}


# --------------------------------------------------------------- summary
def fmt(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(summary: dict[str, Any]) -> str:
    env, checks = summary["environment"], summary["checks"]
    lines = [
        "# GPU check",
        "",
        f"`{summary['command']}` on **{env['device']}** (torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, "
        f"capability {env['capability']}, TF32 matmul {env['tf32_matmul']}), commit {env['git_commit']}, "
        f"{summary['started']}, {fmt(summary['wall_seconds'], 0)} s.",
        "",
        "| check | status | seconds |",
        "|---|---|---|",
        *(f"| {name} | {c['status']} | {fmt(c['seconds'], 0)} |" for name, c in checks.items()),
    ]
    for name, c in checks.items():
        if c["status"] != "ok":
            error = c.get("error") or "\n\n".join(f"{run}: {c['runs'][run].get('error', 'exit code ' + str(c['runs'][run]['exit_code']))}" for run in c["failed"])
            lines += ["", f"## {name}: FAILED", "", "```", error.strip(), "```"]
    if "runs" in checks.get("demo", {}) or "runs" in checks.get("cpu", {}):
        runs = {**checks.get("demo", {}).get("runs", {}), **checks.get("cpu", {}).get("runs", {})}
        lines += ["", "## Demo runs (R@K of all tasks after the last stage, reindex)", "", "| run | exit | stage seconds | R@K | printed |", "|---|---|---|---|---|"]
        for name, r in runs.items():
            recall = ", ".join(f"{k} {v:.1f}" for k, v in r.get("final_all_tasks", {}).items())
            stages = " / ".join(f"{s:.1f}" for s in r.get("stage_seconds", []))
            lines.append(f"| {name} | {r['exit_code']} | {stages} | {recall} | {'<br>'.join(r['printed'])} |")
    if checks.get("cpu", {}).get("differences_vs_cpu"):
        lines += ["", "## Device against CPU (every R@K of every stage, points)", "", "| run | compared | max abs | where | mean abs |", "|---|---|---|---|---|"]
        for name, d in checks["cpu"]["differences_vs_cpu"].items():
            lines.append(f"| {name} | {d['compared']} | {d['max_abs_points']:.2f} | {fmt(d['where'])} | {d['mean_abs_points']:.3f} |")
    if "steps" in checks.get("fp16", {}):
        f = checks["fp16"]
        lines += [
            "",
            "## fp16 with the gradient scaler",
            "",
            f"{f['steps']} steps (tasks {f['tasks_trained']}), scale {f['initial_scale']:g} -> {f['final_scale']:g}, "
            f"{len(f['scale_changes'])} changes, {f['skipped_steps']} skipped steps, losses finite: {f['all_losses_finite']}, "
            f"loss {f['loss_first_10_mean']:.3f} (first 10) -> {f['loss_last_10_mean']:.3f} (last 10); "
            f"all tasks after: {', '.join(f'{k} {v:.1f}' for k, v in f['all_tasks_after'].items())}.",
            "",
            "Scale changes (step: from -> to): " + (", ".join(f"{c['step']}: {c['from']:g} -> {c['to']:g}" for c in f["scale_changes"]) or "none"),
        ]
    if "runs" in checks.get("towers", {}):
        lines += [
            "",
            f"## CLIP / SigLIP towers, random weights, bf16 (README's CLIP: {README_CLIP['params_m']}M parameters, "
            f"{README_CLIP['top2_trainable_m']}M trained with train_top_blocks: 2)",
            "",
            "| towers | train_top_blocks | parameters | trained | weights GiB | grads+Adam GiB | peak GiB | rest of peak GiB | images/s (batch) | data wait |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in checks["towers"]["runs"]:
            lines.append(
                f"| {r['family']} | {r['train_top_blocks']} | {r['params']:,} | {r['trainable']:,} | {r['estimate_weights_gib']:.2f} | "
                f"{r['estimate_grads_adam_gib']:.2f} | {fmt(r['peak_gib'])} | {fmt(r['rest_of_peak_gib'])} | {r['images_per_s']:.0f} ({r['batch_size']}) | {r['data_wait']} |"
            )
    if "ratio" in checks.get("ranks", {}):
        r = checks["ranks"]
        lines += [
            "",
            f"## retrieval_ranks, {r['images']} x {r['captions']} x {r['dim']} (tile {r['tile']}, fused {r['fused']})",
            "",
            "| what | seconds | peak GiB (inputs: {}) |".format(fmt(r["inputs_gib"])),
            "|---|---|---|",
            f"| tiled product alone | {' / '.join(fmt(s) for s in r['product_seconds'])} | {fmt(r['product_peak_gib'])} |",
            f"| retrieval_ranks (both directions) | {fmt(r['ranks_seconds'])} | {fmt(r['ranks_peak_gib'])} |",
            f"| ratio | {r['ratio']:.2f}x | - |",
            f"| fused kernel compilation (once) | {fmt(r['compile_seconds'])} | - |",
        ]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, work: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "summary.md").write_text(markdown(summary))
    names = [name for check in summary["checks"].values() if isinstance(check.get("runs"), dict) for name in check["runs"]]
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:  # the summary's runs: results and log, no checkpoint or TensorBoard files
        for name in names:
            for path in (work / f"{name}.log", *(work / name / f for f in ("results.json", "results.md", "config.yaml"))):
                if path.exists():
                    tar.add(path, arcname=str(path.relative_to(work)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "results" / "gpu"), help="where the four output files go (default $OUT, else results/gpu)")
    parser.add_argument("--work", default=str(REPO / "runs" / "gpu_check"), help="run directories and model files")
    parser.add_argument("--device", default="cuda", help="the device checked (cpu: the dry run's)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds on a CPU")
    parser.add_argument("--dry-run", action="store_true", help="--device cpu --quick")
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), help="run these checks, keeping the others' figures of an earlier summary.json in --out")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--fp16-steps", type=int, default=300, help="fp16 training steps at least (whole tasks)")
    parser.add_argument("--ranks-images", type=int, default=200_000, help="images of the retrieval_ranks check (1M captions)")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.quick = "cpu", True
    if args.quick:
        args.fp16_steps = min(args.fp16_steps, 5)
    args.demo_sets = QUICK_DEMO if args.quick else []
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; run it on a GPU machine, or `--dry-run` to try it on the CPU")
    try:
        versions()  # every run records them: fail now, not after the first run
    except PackageNotFoundError as e:
        raise SystemExit(f"gpu_check: the package {e.name} is not installed in {sys.executable}; see docs/gpu.md") from None
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    previous = read_json(out / "summary.json") if args.only and (out / "summary.json").exists() else {}
    summary = {
        "command": shlex.join(["python", "scripts/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "environment": environment(device),
        "checks": dict(previous.get("checks", {})),
    }
    start = time.perf_counter()
    with open(out / "gpu_check.log", "a" if previous else "w") as log, contextlib.redirect_stdout(Tee(sys.stdout, log)):
        print(f"$ {summary['command']}\n{summary['environment']['device']}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
        for name in args.only or CHECKS:
            print(f"--- {name}", flush=True)
            check_start = time.perf_counter()
            try:
                figures = CHECKS[name](args, device, work)
                record = {"status": "failed" if figures.get("failed") else "ok", **figures}
            except Exception:  # recorded; the other checks still run
                record = {"status": "failed", "error": traceback.format_exc()}
                print(record["error"], flush=True)
            free_memory(device)
            summary["checks"][name] = {**record, "seconds": time.perf_counter() - check_start}
            summary["wall_seconds"] = time.perf_counter() - start
            write_outputs(out, work, summary)  # after every check: a run cut short keeps what it measured
            print(f"--- {name}: {record['status']} ({summary['checks'][name]['seconds']:.0f} s)", flush=True)
    print(f"wrote {out}/summary.md, summary.json, gpu_check.log, runs.tar.gz ({summary['wall_seconds']:.0f} s)")
    return summary


if __name__ == "__main__":
    sys.exit(0 if all(c["status"] == "ok" for c in main()["checks"].values()) else 1)
