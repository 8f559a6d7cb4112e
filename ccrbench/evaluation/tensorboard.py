"""What a run writes for TensorBoard, and the dashboards' layout.

Scalars (one SummaryWriter per run, under `<run>/tb`):
    `{metric}/{policy}/{task name}`, `{metric}/{policy}/average (known task)` and
    `{metric}/{policy}/all tasks (unknown task)` (e.g. `i2t_r10/reindex/blocks`), at
    step = the number of tasks learned (joint, trained once on all tasks, logs at the
    last step, beside the other runs' final values);
    `final/...` the same after the last task and `final/forgetting/{metric}/{policy}`:
    one point per run, exact whatever the smoothing;
    `train/loss/total`, `train/loss/<penalty>` and `train/lr` every few iterations.
Custom Scalars: one chart per (metric, direction, policy) with every task and both
summaries, the forgetting charts first. HPARAMS: one experiment (per suite, or per run)
listing the keys that differ first; each run is a session with its values and final metrics.
Images/Text: a fixed few queries of every seen task after every stage, hits and misses marked.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from google.protobuf import struct_pb2
from PIL import Image, ImageDraw, ImageFont
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from ccrbench.config import flatten
from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, POLICY_LABELS, TaskEmbeddings

SCOPE_LABELS = {AVERAGE: "average (known task)", ALL_TASKS: "all tasks (unknown task)"}
# Keys a comparison is about: shown first in HPARAMS when they differ (or, for one run, always).
KEY_HPARAMS = ("strategy", "decoupled", "seed", "model.shared_layers", "loss")
CONTINUAL = ("forgetting", "plasticity", "bwt")  # results.json's per-run continual-learning summaries
DIAGNOSTICS = "Diagnostics"  # the tag prefix of the drift diagnostics


# ----------------------------------------------------------------------------- scalars
def tasks_learned(record: Mapping[str, Any]) -> int:
    """The step of a stage record: how many tasks the model has learned (seen) so far."""
    return len(record["tasks"])


def scope_label(scope: str, task_names: Sequence[str]) -> str:
    """A task's name, 'average (known task)' or 'all tasks (unknown task)'."""
    return task_names[int(scope)] if scope.isdigit() else SCOPE_LABELS.get(scope, scope)


def scalar_tag(metric: str, policy: str, scope: str, task_names: Sequence[str]) -> str:
    """`i2t_r10/reindex/blocks`, `.../average (known task)`, `.../all tasks (unknown task)`."""
    return f"{metric}/{policy}/{scope_label(scope, task_names)}"


def log_stage(writer: SummaryWriter, record: Mapping[str, Any], task_names: Sequence[str]) -> None:
    """Every metric of one evaluation stage (every seen task and both summaries), and its
    diagnostics as `Diagnostics/{name}/{task name}`, ..."""
    step = tasks_learned(record)
    for policy, scopes in record["metrics"].items():
        for scope, values in scopes.items():
            for metric, value in values.items():
                writer.add_scalar(scalar_tag(metric, policy, scope, task_names), value, step)
    for scope, values in record.get("diagnostics", {}).items():
        for name, value in values.items():
            writer.add_scalar(f"{DIAGNOSTICS}/{name}/{scope_label(scope, task_names)}", value, step)


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """{`final/...` tag: value}: the summaries after the last task, and the forgetting,
    plasticity and backward transfer of every metric (NaN ones, e.g. joint training's
    forgetting, are left out)."""
    out = {
        "final/" + scalar_tag(metric, policy, scope, results["task_names"]): value
        for policy, scopes in results["final"].items()
        for scope in (AVERAGE, ALL_TASKS)
        for metric, value in scopes[scope].items()
    }
    for name in CONTINUAL:
        for policy, values in results.get(name, {}).items():
            out.update({f"final/{name}/{metric}/{policy}": v for metric, v in values.items() if v is not None and not math.isnan(v)})
    return out


def log_final(writer: SummaryWriter, results: Mapping[str, Any]) -> None:
    """`final/...` scalars at the last step."""
    step = tasks_learned(results["stages"][-1])
    for tag, value in final_metrics(results).items():
        writer.add_scalar(tag, value, step)


# ----------------------------------------------------------------------------- custom scalars
def _title(metric: str) -> str:
    """i2t_r10 -> 'i2t R@10'; rsum stays."""
    direction, _, name = metric.rpartition("_")
    name = f"R@{name[1:]}" if re.fullmatch(r"r\d+", name) else {"medr": "median rank", "meanr": "mean rank"}.get(name, name)
    return f"{direction} {name}".strip()


def _multiline(title: str, pattern: str) -> layout_pb2.Chart:
    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[pattern]))


def scalars_layout(record: Mapping[str, Any]) -> layout_pb2.Layout:
    """Custom Scalars layout from a stage record's policies and metrics: first the forgetting
    charts (the largest R@K, both directions, both main policies), then training curves,
    then every other metric (closed), then the final values."""
    policies = list(record["metrics"])
    metrics = list(next(iter(record["metrics"][policies[0]].values())))
    recalls = sorted({int(m.rpartition("_r")[2]) for m in metrics if re.search(r"_r\d+$", m)})
    headline = [m for m in metrics if m.endswith(f"_r{recalls[-1]}")] if recalls else metrics[:1]

    def charts(metric: str, only: Sequence[str] = policies) -> list[layout_pb2.Chart]:
        return [
            _multiline(f"{_title(metric)} · {POLICY_LABELS.get(p, p)}", f"^{re.escape(f'{metric}/{p}/')}") for p in only
        ]

    main = [p for p in policies if p in POLICY_LABELS] or policies
    forgetting = [c for p in main for m in headline for c in charts(m, [p])]
    categories = [
        layout_pb2.Category(
            title=f"Forgetting: {_title(headline[0]).split()[-1]} of every task, its known-task average and unknown-task "
            "score, against the number of tasks learned",
            chart=forgetting,
        ),
        layout_pb2.Category(
            title="Training (per iteration)",
            chart=[_multiline("loss and penalty terms", r"^train/(.+ model/)?loss/"), _multiline("learning rate", r"^train/(.+ model/)?lr$")],
        ),
    ]
    rest = [m for m in metrics if m not in headline]
    extra = [p for p in policies if p not in main]
    if extra:
        categories.append(layout_pb2.Category(title="Other indexing policies", chart=[c for m in headline for c in charts(m, extra)], closed=True))
    for metric in sorted(rest, key=lambda m: (_title(m).split()[-1], m)):
        categories.append(layout_pb2.Category(title=_title(metric), chart=charts(metric), closed=True))
    diagnostics = sorted({name for values in record.get("diagnostics", {}).values() for name in values})
    if diagnostics:
        categories.append(
            layout_pb2.Category(
                title="Diagnostics", chart=[_multiline(name, f"^{re.escape(f'{DIAGNOSTICS}/{name}/')}") for name in diagnostics], closed=True
            )
        )
    categories.append(
        layout_pb2.Category(
            title="Final values (one point per run at its last step; forgetting = value right after learning a task - final)",
            chart=[_multiline(f"final {_title(m)}", f"^{re.escape(f'final/{m}/')}") for m in headline]
            + [_multiline(name, f"^final/{name}/") for name in CONTINUAL],
            closed=True,
        )
    )
    return layout_pb2.Layout(category=categories)


def log_layout(writer: SummaryWriter, record: Mapping[str, Any]) -> None:
    """Writes the Custom Scalars layout (TensorBoard merges identical layouts of several runs)."""
    value = Summary.Value(
        tag=layout_metadata.CONFIG_SUMMARY_TAG,
        tensor=tensor_util.make_tensor_proto(scalars_layout(record).SerializeToString()),
        metadata=layout_metadata.create_summary_metadata(),
    )
    writer._get_file_writer().add_summary(Summary(value=[value]))


# ----------------------------------------------------------------------------- hparams
def hparam_values(config: dict[str, Any]) -> dict[str, str | bool | float]:
    """A config dict flattened to HPARAMS values: `strategy` (the component's name),
    `strategy.lam`, ...; ints become strings (shown as written, not as floats)."""
    return {key.removesuffix(".name"): v if isinstance(v, (bool, float)) else str(v) for key, v in flatten(config).items()}


def _sorted_domain(values: set) -> list:
    def key(v: Any) -> tuple:
        return (0, float(v), "") if isinstance(v, str) and re.fullmatch(r"-?\d+", v) else (1, 0.0, str(v))

    return sorted(values, key=key)


def hparam_infos(runs: Sequence[dict[str, Any]]) -> list[api_pb2.HParamInfo]:
    """One HParamInfo per key of any run, with a discrete domain of the values seen.

    A key `differs` (TensorBoard shows those first) when its runs hold two values or more;
    with a single run, the keys a comparison is about (KEY_HPARAMS and strategy options).
    """
    values: dict[str, set] = {}
    for run in runs:
        for name, value in run.items():
            values.setdefault(name, set()).add(value)
    infos = []
    for name, seen in values.items():
        if len(runs) > 1:
            differs = len(seen) > 1
        else:
            differs = name in KEY_HPARAMS[:3] or name.startswith("strategy.")
        kind = {bool: api_pb2.DATA_TYPE_BOOL, float: api_pb2.DATA_TYPE_FLOAT64}.get(type(next(iter(seen))), api_pb2.DATA_TYPE_STRING)
        domain = _sorted_domain(seen)
        if len({type(v) for v in seen}) > 1:  # e.g. a float in one run, a string in another: strings
            kind, domain = api_pb2.DATA_TYPE_STRING, _sorted_domain({str(v) for v in seen})
        info = api_pb2.HParamInfo(name=name, type=kind, differs=differs)
        info.domain_discrete.extend(domain)
        infos.append(info)
    return infos


def _hparam_value(value: str | bool | float) -> Any:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, float):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=value)


def hparam_metrics(k: int) -> list[api_pb2.MetricInfo]:
    """The HPARAMS metrics, most telling first (TensorBoard shows the first five): rsum of the
    known and the unknown task under both policies and its forgetting; then R@k of each direction,
    the other forgetting columns and the plasticity."""
    chosen = ["rsum", f"i2t_r{k}", f"t2i_r{k}"]
    finals = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(tag="final/" + scalar_tag(m, p, s, ())),
            display_name=f"{_title(m)} {'known' if s == AVERAGE else 'unknown'} task, {POLICY_LABELS[p]}",
        )
        for m in chosen
        for s in (AVERAGE, ALL_TASKS)
        for p in POLICY_LABELS
    ]
    forgetting, plasticity = (
        [
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"final/{name}/{m}/{p}"), display_name=f"{name} {_title(m)}, {POLICY_LABELS[p]}")
            for m in chosen
            for p in POLICY_LABELS
        ]
        for name in ("forgetting", "plasticity")
    )
    return finals[:4] + forgetting[:1] + finals[4:] + forgetting[1:] + plasticity


def _write_hparams(writer: SummaryWriter, tag: str, data: plugin_data_pb2.HParamsPluginData) -> None:
    value = Summary.Value(tag=tag, metadata=hparams_metadata.create_summary_metadata(data), tensor=hparams_metadata.NULL_TENSOR)
    writer._get_file_writer().add_summary(Summary(value=[value]))


def log_experiment(writer: SummaryWriter, configs: Sequence[dict[str, Any]]) -> None:
    """The HPARAMS experiment of these runs' configs: every key (those that differ first) and the metrics."""
    experiment = api_pb2.Experiment(
        hparam_infos=hparam_infos([hparam_values(c) for c in configs]),
        metric_infos=hparam_metrics(max(k for c in configs for k in c["eval"]["ks"])),
        time_created_secs=time.time(),
    )
    _write_hparams(writer, hparams_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def write_suite_experiment(out: Path, configs: Sequence[dict[str, Any]]) -> None:
    """The suite's single HPARAMS experiment, in the suite directory, replacing an older one (so
    runs added to the suite later are compared too); the suite's runs write only their sessions."""
    for old in out.glob("events.out.tfevents.*.hparams"):
        old.unlink()
    writer = SummaryWriter(str(out), filename_suffix=".hparams")
    log_experiment(writer, configs)
    writer.close()


def log_session_start(writer: SummaryWriter, config: dict[str, Any]) -> None:
    """This run's hyper-parameter values (a session of the HPARAMS tab)."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparam_values(config).items():
        info.hparams[name].CopyFrom(_hparam_value(value))
    _write_hparams(writer, hparams_metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def log_session_end(writer: SummaryWriter) -> None:
    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    _write_hparams(writer, hparams_metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


# ----------------------------------------------------------------------------- retrieval examples
_FONT = ImageFont.load_default(size=14)
_LINE = 18  # pixels per text line
_HIT, _MISS = (0, 140, 0), (200, 0, 0)


def _picture(image: Tensor, size: int) -> Image.Image:
    """A [3, H, W] tensor in [0, 1] as a PIL image `size` pixels high."""
    pil = to_pil_image(image.detach().float().clamp(0, 1).cpu())
    return pil.resize((round(pil.width * size / pil.height), size), Image.NEAREST)


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines at most `width` pixels wide (words kept whole)."""
    lines = [""]
    for word in text.split():
        candidate = f"{lines[-1]} {word}".strip()
        if _FONT.getlength(candidate) <= width or not lines[-1]:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def i2t_card(image: Tensor, results: Sequence[tuple[bool, str]], *, size: int = 128, width: int = 480) -> Tensor:
    """The query image above its ranked captions, hits green, misses red: [3, H, W] uint8."""
    blocks = [(hit, _wrap(f"{rank}. {'HIT' if hit else 'miss'}: {caption}", width - 8)) for rank, (hit, caption) in enumerate(results, 1)]
    card = Image.new("RGB", (width, size + 8 + _LINE * sum(len(lines) for _, lines in blocks)), "white")
    card.paste(_picture(image, size), (0, 0))
    draw = ImageDraw.Draw(card)
    y = size + 4
    for hit, lines in blocks:
        for line in lines:
            draw.text((4, y), line, fill=_HIT if hit else _MISS, font=_FONT)
            y += _LINE
    return pil_to_tensor(card)


def t2i_card(caption: str, images: Sequence[Tensor], hits: Sequence[bool], *, size: int = 80) -> Tensor:
    """The query caption above its ranked images, each framed and labelled green (hit) or red (miss): [3, H, W] uint8."""
    frame, gap = 4, 6
    tiles = [_picture(image, size) for image in images]
    width = max(sum(t.width + 2 * frame + gap for t in tiles), 320)
    lines = _wrap(caption, width - 8)
    top = _LINE * len(lines) + 4
    card = Image.new("RGB", (width, top + size + 2 * frame + _LINE + 2), "white")
    draw = ImageDraw.Draw(card)
    for row, line in enumerate(lines):
        draw.text((4, 2 + row * _LINE), line, fill="black", font=_FONT)
    x = 0
    for rank, (tile, hit) in enumerate(zip(tiles, hits), 1):
        colour = _HIT if hit else _MISS
        draw.rectangle((x, top, x + tile.width + 2 * frame - 1, top + size + 2 * frame - 1), fill=colour)
        card.paste(tile, (x + frame, top + frame))
        draw.text((x + frame, top + size + 2 * frame), f"{rank}. {'HIT' if hit else 'miss'}", fill=colour, font=_FONT)
        x += tile.width + 2 * frame + gap
    return pil_to_tensor(card)


def _caption(dataset: Any, emb: TaskEmbeddings, row: int) -> str:
    """The text of caption row `row` (rows follow the dataset's images and their captions in order)."""
    image = int(emb.text_to_image[row])
    first = int(torch.nonzero(emb.text_to_image == image)[0])
    return dataset[image][1][row - first]


def log_examples(writer: SummaryWriter, dataset: Any, emb: TaskEmbeddings, *, step: int, tag: str, queries: int = 3, top: int = 5) -> None:
    """Logs the same first `queries` images and captions of a task with their top results:
    as images (query image with its ranked captions; query caption above its ranked
    images; hits green, misses red) when the dataset holds pictures ([3, H, W]), and as text.

    Args:
        writer: where to log.
        dataset: the indexed test dataset, items (image, captions, image_id, task).
        emb: its embeddings with the current encoders (caption rows in dataset order).
        step: the number of tasks learned.
        tag: TensorBoard tag prefix.
        queries: how many image and caption queries.
        top: results shown per query.
    """
    for q in range(min(queries, emb.image.shape[0])):
        image, captions, image_id, _ = dataset[q]
        pictures = image.ndim == 3
        best = (emb.text @ emb.image[q]).topk(min(top, emb.text.shape[0])).indices.tolist()  # caption rows
        results = [(int(emb.text_to_image[j]) == q, _caption(dataset, emb, j)) for j in best]
        if pictures:
            writer.add_image(f"{tag}/i2t_query{q}", i2t_card(image, results), step)
        lines = [f"{'✔' if hit else '✘'} {caption}" for hit, caption in results]
        writer.add_text(f"{tag}/i2t_query{q}", f"image {image_id}:  \n" + "  \n".join(lines), step)
        row = int(torch.nonzero(emb.text_to_image == q)[0])
        best = (emb.image @ emb.text[row]).topk(min(top, emb.image.shape[0])).indices.tolist()  # image rows
        if pictures:
            writer.add_image(f"{tag}/t2i_query{q}", t2i_card(captions[0], [dataset[i][0] for i in best], [i == q for i in best]), step)
        marks = " ".join(("✔" if i == q else "✘") + f" image {dataset[i][2]}" for i in best)
        writer.add_text(f"{tag}/t2i_query{q}", f"{captions[0]}  \nresults, left to right: {marks}", step)
