"""The pretrained era's metrics over the full task x stage matrix (row 0: before any training):
forward transfer, ZSCL's Transfer / Avg / Last and retention, each against a naive reference."""

import math
import random

import pytest

from ccrbench.evaluation import continual

NAN = float("nan")


def naive(full, learned_at):
    """Loops over the definitions (docs/metrics.md): task t learned at stage learned_at[t] (full row learned_at[t] + 1)."""
    later = [t for t in range(len(learned_at)) if learned_at[t] >= 1]
    fwt = sum(full[learned_at[t]][t] - full[0][t] for t in later) / len(later)
    transfer = sum(sum(full[r][t] for r in range(1, learned_at[t] + 1)) / learned_at[t] for t in later) / len(later)
    rows = full[1:]
    avg = sum(sum(row) / len(row) for row in rows) / len(rows)
    last = sum(full[-1]) / len(full[-1])
    return fwt, transfer, avg, last


def records(full, learned_at):
    """The stage records and unlearned records a run would write for this full matrix (one metric key)."""
    tasks = range(len(learned_at))
    stage_of = lambda s, ts: {"reindex": {str(t): {"i2t_r10": full[s + 1][t]} for t in ts}}  # noqa: E731
    stages = [{"stage": s, "metrics": stage_of(s, [t for t in tasks if learned_at[t] <= s])} for s in range(len(full) - 1)]
    unlearned = [{"stage": continual.START, "metrics": {"reindex": {str(t): {"i2t_r10": full[0][t]} for t in tasks}}}]
    unlearned += [{"stage": s, "metrics": stage_of(s, [t for t in tasks if learned_at[t] > s])} for s in range(len(full) - 1)]
    return stages, [u for u in unlearned if u["metrics"]["reindex"]]


@pytest.mark.parametrize("seed", range(5))
def test_forward_transfer_and_zscl_metrics_against_their_definitions(seed):
    rng = random.Random(seed)
    num_tasks = rng.randint(2, 5)
    full = [[round(rng.uniform(0, 100), 1) for _ in range(num_tasks)] for _ in range(num_tasks + 1)]
    learned_at = list(range(num_tasks))  # one task per stage
    stages, unlearned = records(full, learned_at)
    summary = continual.pretrained_summary(stages, unlearned, num_tasks)
    assert summary["full_matrices"]["reindex"]["i2t_r10"] == full
    got = [summary[name]["reindex"]["i2t_r10"] for name in continual.PRETRAINED_METRICS]
    assert got == pytest.approx(naive(full, learned_at))
    assert summary["start"] == unlearned[0]["metrics"] and all(u["stage"] >= 0 for u in summary["unlearned"])


def test_ranks_flip_the_sign_of_forward_transfer():
    full = [[5.0, 9.0], [1.0, 4.0], [1.0, 2.0]]  # task 1's median rank falls from 9 to 4 before it is learned: it helped
    matrix = [[1.0, NAN], [1.0, 2.0]]
    assert continual.forward_transfer(matrix, full, higher_is_better=False) == 5.0
    assert continual.forward_transfer(matrix, full, higher_is_better=True) == -5.0


def test_joint_training_has_no_forward_transfer_and_a_run_without_row_0_no_full_matrix():
    full = [[10.0, 20.0], [80.0, 90.0]]  # one stage learns both tasks
    assert math.isnan(continual.forward_transfer([[80.0, 90.0]], full)) and math.isnan(continual.zscl_transfer([[80.0, 90.0]], full))
    stage = [{"stage": 0, "metrics": {"reindex": {"0": {"i2t_r10": 1.0}}}}]
    assert continual.pretrained_summary(stage, [], 1) == {} and continual.full_matrices(stage, [], 1) == {}


def test_retention_is_the_change_since_the_first_evaluation_with_ranks_flipped():
    values = [(40.0, 3.0), (35.0, 4.0), (30.0, 6.0)]
    recs = [{"stage": s - 1, "metrics": {"reindex": {"pre": {"i2t_r10": r, "i2t_medr": m}}}} for s, (r, m) in enumerate(values)]
    summary = continual.retention_summary(recs)
    assert summary["retention"]["reindex"]["pre"] == {"i2t_r10": -10.0, "i2t_medr": -3.0}  # both: lost
    assert summary["per_stage"]["reindex"]["pre"]["i2t_r10"] == [40.0, 35.0, 30.0]
    assert continual.retention_summary([]) == {}
