"""A run of the pretrained era's protocol: evaluated before training (row 0), every task at every
stage (the upper triangle), forward transfer, and a held-out retention set measured throughout."""

import json
import math
import re

import pytest

from ccrbench.cli import main
from ccrbench.config import from_dict
from ccrbench.registry import ConfigError
from tests.tiny import run_args

RETENTION = "eval.retention=[{label: pretraining, benchmark: {name: shapes, seed: 1, colour_shift: 0.0, train_images: 1, test_images: 8, image_size: 32}}]"


def test_a_run_records_row_0_the_upper_triangle_forward_transfer_and_retention(tmp_path):
    out = tmp_path / "run"
    assert main(run_args(out, RETENTION)) == 0
    results = json.loads((out / "results.json").read_text())
    full = results["full_matrices"]["noreindex"]["i2t_r10"]
    assert len(full) == 4 and all(len(row) == 3 and all(math.isfinite(v) for v in row) for row in full)  # row 0 + 3 stages, every task
    assert full[0] == [results["start"]["noreindex"][t]["i2t_r10"] for t in "012"]
    assert full[1][1:] == [results["unlearned"][0]["metrics"]["reindex"][t]["i2t_r10"] for t in "12"]  # not learned yet after stage 0
    assert [row[: i + 1] for i, row in enumerate(results["matrices"]["noreindex"]["i2t_r10"])] == [row[: i + 1] for i, row in enumerate(full[1:])]
    assert results["forward_transfer"]["reindex"]["i2t_r10"] == pytest.approx(((full[1][1] - full[0][1]) + (full[2][2] - full[0][2])) / 2)
    retention = results["retention"]
    assert [r["stage"] for r in retention["stages"]] == [-1, 0, 1, 2]  # before training, then after every stage
    per_stage = retention["per_stage"]["reindex"]["pretraining"]["t2i_r10"]
    assert retention["retention"]["reindex"]["pretraining"]["t2i_r10"] == pytest.approx(per_stage[-1] - per_stage[0])
    assert retention["stages"][0]["metrics"]["reindex"] == retention["stages"][0]["metrics"]["noreindex"]  # one index before training


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ([{"label": "a"}, {"label": "a"}], "eval.retention[1].label: 'a' is used twice"),
        ([{"label": "all"}], "eval.retention[0].label: 'all' is a task scope name"),
        ([{"label": "x", "benchmark": {"name": "shapes", "sed": 1}}], "eval.retention[0].benchmark: unknown key(s) sed"),
        ({"label": "x"}, "eval.retention: expected a list of sections"),
    ],
)
def test_bad_retention_sets_are_named(retention, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict({"eval": {"retention": retention}})
