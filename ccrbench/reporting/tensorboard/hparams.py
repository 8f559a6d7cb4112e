"""The HPARAMS tab: one experiment (per suite, or per run) and each run's session."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from ccrbench.config import flatten
from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, POLICY_LABELS, RSUM, MetricKey
from ccrbench.reporting.tensorboard.events import EventWriter, Writer
from ccrbench.reporting.tensorboard.scalars import scalar_tag

# Keys a comparison is about: shown first in HPARAMS when they differ (or, for one run, always).
KEY_HPARAMS = ("strategy", "decoupled", "seed", "model.shared_layers", "loss")


def hparam_values(config: dict[str, Any]) -> dict[str, str | bool | float]:
    """A config dict flattened to HPARAMS values: `strategy` (the component's name),
    `strategy.lam`, ...; ints become strings (shown as written, not as floats)."""
    return {key.removesuffix(".name"): v if isinstance(v, (bool, float)) else str(v) for key, v in flatten(config).items()}


def _sorted_domain(values: set) -> list:
    def key(v: Any) -> tuple:
        return (0, float(v), "") if isinstance(v, str) and re.fullmatch(r"-?\d+", v) else (1, 0.0, str(v))

    return sorted(values, key=key)


def hparam_infos(runs: Sequence[dict[str, Any]]) -> list[api_pb2.HParamInfo]:
    """One HParamInfo per key, with a discrete domain of the values seen.

    Several runs: the keys with two values or more, so that the five columns TensorBoard shows
    at first (differing keys first, by name) tell the runs apart; the others, the same wherever
    they are set (e.g. `strategy.lam` of the one EWC run), are left out: TensorBoard has no way
    to hide a column by default, and they are in every run's config.yaml. A single run: every key, those a comparison is
    about (KEY_HPARAMS and strategy options) marked `differs` and shown first.
    """
    values: dict[str, set] = {}
    for run in runs:
        for name, value in run.items():
            values.setdefault(name, set()).add(value)
    infos = []
    for name, seen in values.items():
        if len(runs) > 1:
            differs = len(seen) > 1
            if not differs:
                continue  # the same in every run: left out (HPARAMS shows its first five keys, with no way to hide one)
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
    """The HPARAMS metrics, most telling first (TensorBoard shows the first five): the forgetting
    of rsum (reindex), then rsum of the known and the unknown task under both policies; then R@k
    of each direction, the other forgetting columns, the plasticity and the forward transfer. Every
    run logs each (`scalars.final_metrics`), joint training too, so none is dropped from a view."""
    chosen = [MetricKey(RSUM), MetricKey("r", "i2t", k), MetricKey("r", "t2i", k)]
    finals = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(tag="final/" + scalar_tag(str(m), p, s, ())),
            display_name=f"{m.title} {'known' if s == AVERAGE else 'all'} · {POLICY_LABELS[p]}",
        )
        for m in chosen
        for s in (AVERAGE, ALL_TASKS)
        for p in POLICY_LABELS
    ]
    forgetting, plasticity, forward = (
        [
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"final/{name}/{m}/{p}"), display_name=f"{name} {m.title} · {POLICY_LABELS[p]}")
            for m in chosen
            for p in POLICY_LABELS
        ]
        for name in ("forgetting", "plasticity", "forward_transfer")
    )
    return forgetting[:1] + finals[:4] + finals[4:] + forgetting[1:] + plasticity + forward


def _write_hparams(writer: Writer, tag: str, data: plugin_data_pb2.HParamsPluginData) -> None:
    value = Summary.Value(tag=tag, metadata=hparams_metadata.create_summary_metadata(data), tensor=hparams_metadata.NULL_TENSOR)
    writer._get_file_writer().add_summary(Summary(value=[value]))


def log_experiment(writer: Writer, configs: Sequence[dict[str, Any]]) -> None:
    """The HPARAMS experiment of these runs' configs: every key (those that differ first) and the metrics."""
    experiment = api_pb2.Experiment(
        hparam_infos=hparam_infos([hparam_values(c) for c in configs]),
        metric_infos=hparam_metrics(max(k for c in configs for k in c["eval"]["ks"])),
        time_created_secs=time.time(),
    )
    _write_hparams(writer, hparams_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def write_suite_experiment(tensorboard: Path, run: str, configs: Sequence[dict[str, Any]]) -> None:
    """The suite's single HPARAMS experiment, written into run `run`'s folder of the suite's
    TensorBoard folder (a file of its own at the folder's root would be an empty run named
    "."), replacing an older one (so runs added to the suite later are compared too); the
    suite's runs write only their sessions."""
    for old in tensorboard.glob("*/events.out.tfevents.*.hparams"):
        old.unlink()
    writer = EventWriter(tensorboard / run, filename_suffix=".hparams")
    log_experiment(writer, configs)
    writer.close()


def trial_id(run: str, *, seed: str | None = None) -> str:
    """HPARAMS' name of a run (its trial id, in a column that shows about 15 characters, and the
    rows' order) from the run's name: a suite's `strategy-ewc__decoupled-true__seed-0` ->
    `ewc s0 decoupled`: the strategy, `s` and the seed, then a true flag's key, `no key` for a
    false one, `key=value` for the rest (the table's columns hold them too); one per run. Any
    other name as it is. `seed` replaces the seed (`ewc mean decoupled`: the mean over seeds)."""
    parts = dict(part.split("-", 1) for part in run.split("__") if "-" in part)
    if len(parts) != len(run.split("__")):
        return run if seed is None else f"{run} {seed}"
    number = parts.pop("seed", None)
    words = [parts.pop("strategy", ""), seed or (f"s{number}" if number is not None else "")]
    for key, value in parts.items():
        words.append(key if value == "true" else f"no {key}" if value == "false" else f"{key}={value}")
    return " ".join(w for w in words if w)


def log_session_start(writer: Writer, config: dict[str, Any], *, trial: str | None = None) -> None:
    """This run's hyper-parameter values (a session of the HPARAMS tab) and its trial id (by
    default `trial_id` of the run's name, the writer's folder)."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=trial or trial_id(Path(writer.log_dir).name))
    for name, value in hparam_values(config).items():
        info.hparams[name].CopyFrom(_hparam_value(value))
    _write_hparams(writer, hparams_metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def log_session_end(writer: Writer) -> None:
    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    _write_hparams(writer, hparams_metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))
