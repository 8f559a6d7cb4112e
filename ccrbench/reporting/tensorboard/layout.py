"""The Custom Scalars dashboard of a run: which charts, in which order, open or closed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.util import tensor_util

from ccrbench.evaluation.keys import POLICY_LABELS, parse_keys
from ccrbench.reporting.tensorboard.scalars import CONTINUAL, DIAGNOSTICS_TAG, diagnostic_name, forgetting_prefix, headline_metrics
from ccrbench.reporting.tensorboard.events import Writer


def _multiline(title: str, pattern: str) -> layout_pb2.Chart:
    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[pattern]))


def _prefix(metric: str, policy: str, headline: Sequence[str]) -> str:
    """The tag prefix of one (metric, policy): `R@10/i2t reindex/` or `i2t_r5/reindex/`."""
    if metric in headline and policy in POLICY_LABELS:
        return forgetting_prefix(metric, policy)
    return f"{metric}/{policy}/"


def scalars_layout(record: Mapping[str, Any]) -> layout_pb2.Layout:
    """Custom Scalars layout from a stage record's policies and metrics: first the forgetting
    charts (the largest R@K, both directions, both main policies), then training curves,
    then every other metric (closed), then the final values."""
    policies = list(record["metrics"])
    metrics = list(next(iter(record["metrics"][policies[0]].values())))
    keys = dict(zip(metrics, parse_keys(metrics)))
    headline = headline_metrics(metrics) or metrics[:1]

    def charts(metric: str, only: Sequence[str] = policies) -> list[layout_pb2.Chart]:
        return [
            _multiline(f"{keys[metric].title} · {POLICY_LABELS.get(p, p)}", f"^{re.escape(_prefix(metric, p, headline))}") for p in only
        ]

    main = [p for p in policies if p in POLICY_LABELS] or policies
    forgetting = [c for p in main for m in headline for c in charts(m, [p])]
    categories = [
        layout_pb2.Category(
            title=f"Forgetting: {keys[headline[0]].title.split()[-1]} of every task, its known-task average and unknown-task "
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
    for metric in sorted(rest, key=lambda m: (keys[m].title.split()[-1], m)):
        categories.append(layout_pb2.Category(title=keys[metric].title, chart=charts(metric), closed=True))
    diagnostics = sorted({diagnostic_name(key) for values in record.get("diagnostics", {}).values() for key in values})
    if diagnostics:
        categories.append(
            layout_pb2.Category(
                title=DIAGNOSTICS_TAG, chart=[_multiline(name, f"^{re.escape(f'{DIAGNOSTICS_TAG}/{name}/')}") for name in diagnostics], closed=True
            )
        )
    categories.append(
        layout_pb2.Category(
            title="Final values (one point per run at its last step; forgetting = value right after learning a task - final)",
            chart=[_multiline(f"final {keys[m].title}", f"^{re.escape(f'final/{m}/')}") for m in headline]
            + [_multiline(name, f"^final/{name}/") for name in CONTINUAL],
            closed=True,
        )
    )
    return layout_pb2.Layout(category=categories)


def log_layout(writer: Writer, record: Mapping[str, Any]) -> None:
    """Writes the Custom Scalars layout (TensorBoard merges identical layouts of several runs)."""
    value = Summary.Value(
        tag=layout_metadata.CONFIG_SUMMARY_TAG,
        tensor=tensor_util.make_tensor_proto(scalars_layout(record).SerializeToString()),
        metadata=layout_metadata.create_summary_metadata(),
    )
    writer._get_file_writer().add_summary(Summary(value=[value]))
