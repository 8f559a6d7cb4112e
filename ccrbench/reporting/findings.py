"""The paper's findings (and those of the pretrained era: forgetting and retention against
fine-tuning) as paired comparisons over seeds, each with a verdict: holds (the 95% interval of
the mean difference lies above 0), does not hold (below 0) or inconclusive."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, RULES, IndexingPolicy, MetricKey
from ccrbench.markdown import markdown_table
from ccrbench.registry import ConfigError
from ccrbench.reporting.drift import policy_title
from ccrbench.reporting.grouping import Group, group_runs
from ccrbench.reporting.pretrained import retention_labels
from ccrbench.reporting.statistics import confidence_interval, mean_std


@dataclass(frozen=True)
class Arm:
    """One side of a finding's comparison: a value of the runs with one label.

    Attributes:
        label: runs with this `run_label` (e.g. "finetune", "ewc (decoupled)").
        policy: the indexing policy read.
        quantity: "final" (final recall in `scope`), one of CL_METRICS, "forward_transfer" or
            "retention" (the change since before training on the retention set `scope`).
        scope: for "final": AVERAGE (known task) or ALL_TASKS (unknown task); for "retention":
            the retention set's label.
        shared_layers: runs of this architecture; None: each architecture in turn.
    """

    label: str
    policy: str
    quantity: str = "final"
    scope: str = AVERAGE
    shared_layers: int | None = None

    def describe(self) -> str:
        if self.quantity == "final":
            what = {AVERAGE: "known-task average", ALL_TASKS: "all-task search"}[self.scope]
        else:
            what = f"retention on {self.scope}" if self.quantity == "retention" else self.quantity
        arch = "" if self.shared_layers is None else f", {self.shared_layers} shared layer(s)"
        return f"{self.label} ({policy_title(self.policy)}{arch}) {what}"


@dataclass(frozen=True)
class Finding:
    """A claim of the paper as a paired comparison: `high` exceeds `low`, seed by seed."""

    name: str
    high: Arm
    low: Arm


PRETRAINED_ERA = (("wise_ft", "WiSE-FT"), ("zscl", "ZSCL"), ("lora", "LoRA"))  # the baselines of a pretrained start
SIGNED = ("forgetting", "bwt", "forward_transfer", "retention")  # positive: better, for ranks too (no flip)

# The paper's findings (README), each checked per direction. forgetting is positive when
# tasks are forgotten, so "reduces forgetting" reads forgetting(finetune) > forgetting(ewc).
FINDINGS = (
    Finding("continual < joint", Arm("joint", "reindex"), Arm("finetune", "reindex")),
    Finding("no reindex >= reindex for fine-tuning", Arm("finetune", "noreindex"), Arm("finetune", "reindex")),
    *(
        Finding(f"{name} reduces forgetting vs fine-tuning", Arm("finetune", policy, "forgetting"), Arm(label, policy, "forgetting"))
        for label, name in (("ewc", "EWC"), ("mas", "MAS"))
        for policy in POLICIES
    ),
    Finding(
        "joint without cross-task negatives loses on the all-task search",
        Arm("joint", "reindex", scope=ALL_TASKS),
        Arm("joint_no_ctnp", "reindex", scope=ALL_TASKS),
    ),
    *(
        Finding(f"decoupled directions help {name}", Arm(f"{label} (decoupled)", "noreindex"), Arm(label, "noreindex"))
        for label, name in (("ewc", "EWC"), ("mas", "MAS"))
    ),
    Finding(
        "layer sharing increases fine-tuning's forgetting",
        Arm("finetune", "noreindex", "forgetting", shared_layers=1),
        Arm("finetune", "noreindex", "forgetting", shared_layers=0),
    ),
    # Beyond the paper (configs/suites/reindexing.yaml): compatible training against fine-tuning
    # and EWC where the database is not (fully) re-embedded: no reindex, and a 25 % budget
    # under each selection rule.
    *(
        Finding(f"compatible training beats {name} ({policy_title(policy)})", Arm("compatible", policy), Arm(label, policy))
        for policy in ("noreindex", *(IndexingPolicy("budget", 0.25, rule).format() for rule in RULES))
        for label, name in (("finetune", "fine-tuning"), ("ewc", "EWC"))
    ),
    # The pretrained era (issue 26; configs/suites/pretrained.yaml): its baselines against fine-tuning.
    *(
        Finding(f"{name} reduces forgetting vs fine-tuning", Arm("finetune", policy, "forgetting"), Arm(label, policy, "forgetting"))
        for label, name in PRETRAINED_ERA
        for policy in POLICIES
    ),
)


def retention_findings(retention_set: str) -> tuple[Finding, ...]:
    """Findings on a retention set (held out, never trained on): each strategy that should keep
    the start retains more of it than fine-tuning (retention: the change since before training)."""
    return tuple(
        Finding(
            f"{name} retains more of the start than fine-tuning",
            Arm(label, policy, "retention", retention_set),
            Arm("finetune", policy, "retention", retention_set),
        )
        for label, name in (*PRETRAINED_ERA, ("ewc", "EWC"), ("lwf", "LwF"))
        for policy in POLICIES
    )


@dataclass(frozen=True)
class Verdict:
    """A finding checked on one direction and setting.

    Attributes:
        finding: what was compared.
        direction: "i2t" or "t2i".
        setting: the setting of `group_runs` compared (None when the arms fix the architecture).
        differences: high - low for each seed both arms ran (sign-corrected for ranks).
        mean, low, high: the mean difference and its 95% Student t interval.
        verdict: "holds" (interval above 0), "does not hold" (below 0) or "inconclusive".
    """

    finding: Finding
    direction: str
    setting: str | None
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    verdict: str


def _arm_values(groups: Sequence[Group], arm: Arm, setting: str | None, key: str) -> dict[int, float] | None:
    """{seed: value} of the one group the arm means in `setting`; None when no group or several match."""
    if arm.shared_layers is None:
        matches = [g for g in groups if g.setting == setting and g.label == arm.label]
    else:
        matches = [g for g in groups if g.label == arm.label and g.runs[0]["config"]["model"]["shared_layers"] == arm.shared_layers]
    if len(matches) != 1:
        return None
    values: dict[int, float] = {}
    for r in matches[0].runs:
        seed = r["config"]["seed"]
        if seed in values:
            raise ConfigError(f"finding {arm.describe()}: two runs of {matches[0].label} have seed {seed}; keep one")
        if arm.quantity == "final":
            source = r["final"].get(arm.policy, {}).get(arm.scope, {})
        elif arm.quantity == "retention":
            source = r.get("retention", {}).get("retention", {}).get(arm.policy, {}).get(arm.scope, {})
        else:
            source = r.get(arm.quantity, {}).get(arm.policy, {})
        value = source.get(key)
        if value is not None and not math.isnan(value):
            values[seed] = value
    return values


def check_finding(groups: Sequence[Group], finding: Finding, *, direction: str, metric: str, setting: str | None) -> Verdict | None:
    """The paired difference of a finding over the seeds both arms ran; None if there is none."""
    measure = MetricKey.parse(metric)
    key = str(measure.with_direction(direction))
    high = _arm_values(groups, finding.high, setting, key)
    low = _arm_values(groups, finding.low, setting, key)
    seeds = sorted(set(high) & set(low)) if high and low else []
    if not seeds:
        return None
    # ranks: lower is better, so a claim "high beats low" reads low - high (the others are already signed)
    flip = -1.0 if not measure.higher_is_better and finding.high.quantity not in SIGNED else 1.0
    diffs = tuple(flip * (high[s] - low[s]) for s in seeds)
    mean, std, n = mean_std(diffs)
    lo, hi = confidence_interval(mean, std, n)
    verdict = "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive"  # NaN (one seed): inconclusive
    return Verdict(finding, direction, setting, diffs, mean, lo, hi, verdict)


def check_findings(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> list[Verdict]:
    """Every finding of FINDINGS, and the `retention_findings` of the runs' retention sets, that the
    runs allow, per direction and setting of `group_runs`."""
    groups = group_runs(results)
    settings = list(dict.fromkeys(g.setting for g in groups))
    verdicts = []
    for finding in [*FINDINGS, *(f for label in retention_labels(results) for f in retention_findings(label))]:
        for setting in [None] if finding.high.shared_layers is not None else settings:
            for direction in DIRECTIONS:
                v = check_finding(groups, finding, direction=direction, metric=metric, setting=setting)
                if v is not None:
                    verdicts.append(v)
    return verdicts


def findings_table(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> str:
    """Markdown table of the paper's findings: paired difference over seeds, 95% interval, verdict."""
    rows = [
        [
            v.finding.name,
            f"{v.finding.high.describe()} > {v.finding.low.describe()}",
            v.direction,
            v.setting or "-",
            str(len(v.differences)),
            f"{v.mean:.1f}",
            "-" if math.isnan(v.low) else f"[{v.low:.1f}, {v.high:.1f}]",
            v.verdict,
        ]
        for v in check_findings(results, metric=metric)
    ]
    return "\n".join(markdown_table(["finding", f"comparison ({metric})", "direction", "setting", "seeds", "mean difference", "95% CI", "verdict"], rows))
