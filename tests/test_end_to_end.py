import contextlib
import io
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from ccrbench.cli import main
from ccrbench.run_dir import MARKER
from tests.tiny import TINY


def run_cli(out, *extra):
    args = ["run", "--quiet", "--out", str(out)]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return main(args)


@pytest.fixture(scope="module")
def finetune(tmp_path_factory):
    """(run directory, printed output) of one tiny fine-tuning run through the CLI, shared by the module."""
    out, printed = tmp_path_factory.mktemp("ft"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert run_cli(out) == 0
    return out, printed.getvalue()


def test_finetune_run_writes_results_and_tensorboard(finetune):
    run_dir, printed = finetune
    assert "| all tasks |" in printed and "im2txt no reindex" in printed
    results = json.loads((run_dir / "results.json").read_text())
    assert results["complete"] and results["task_names"] == ["blocks", "curves", "signs"]
    assert len(results["stages"]) == 3 and results["stages"][2]["tasks"] == [0, 1, 2]
    matrix = results["matrices"]["noreindex"]["t2i_r10"]
    assert matrix[0][1] is None and matrix[2][0] is not None  # tasks not seen yet are empty
    for policy in ("reindex", "noreindex"):
        assert set(results["final"][policy]) == {"0", "1", "2", "average", "all"}
        assert results["forgetting"][policy]["i2t_r10"] is not None
    assert results["config"]["model"]["image_encoder"]["width"] == 8
    assert (run_dir / "config.yaml").exists() and (run_dir / "results.md").exists()

    tb = run_dir / "tb" / run_dir.name  # `tensorboard --logdir <run>/tb` names the run as its folder
    assert sorted(p.name for p in (run_dir / "tb").iterdir()) == [run_dir.name, "y-axis 0", "y-axis 100"]  # and the axis runs
    events = EventAccumulator(str(tb)).Reload()
    tags = events.Tags()["scalars"]
    assert "R@10/i2t reindex/1 blocks" in tags
    assert "t2i_r1/noreindex/all tasks" in tags
    assert "rsum/noreindex/known task" in tags
    steps = [e.step for e in events.Scalars("R@10/i2t reindex/1 blocks")]
    assert steps == [0, 1, 2, 3]  # tasks learned (0: before training)
    images = events.Tags()["images"]
    assert {"examples/1 blocks/i2t", "examples/3 signs/t2i"} <= set(images)
    texts = EventAccumulator(str(tb)).Reload().Tags()["tensors"]
    assert "examples/2 curves/i2t/text_summary" in texts  # retrieval examples as text
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    raw = {v.tag for f in tb.glob("events*") for e in EventFileLoader(str(f)).Load() for v in e.summary.value}
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= raw  # the HPARAMS tab


def test_same_seed_same_metrics(finetune, tmp_path):
    assert run_cli(tmp_path / "again") == 0
    a = json.loads((finetune[0] / "results.json").read_text())
    b = json.loads((tmp_path / "again" / "results.json").read_text())
    assert a["stages"] == b["stages"]


def test_joint_trains_once_on_all_tasks(tmp_path):
    run_cli(tmp_path / "joint", "strategy=joint")
    results = json.loads((tmp_path / "joint" / "results.json").read_text())
    assert len(results["stages"]) == 1 and results["stages"][0]["tasks"] == [0, 1, 2]
    assert results["final"]["reindex"] == results["final"]["noreindex"]  # nothing to reindex after one stage


def test_existing_run_directory_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / MARKER).write_text("")  # a run's directory (a folder no run wrote: tests/test_run_dir.py)
    (tmp_path / "r" / "results.json").write_text("{}")
    assert run_cli(tmp_path / "r") == 2
    assert "already holds results" in capsys.readouterr().err
    assert (tmp_path / "r" / "results.json").read_text() == "{}"


def test_config_error_exits_cleanly(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "x"), "--set", "train.epochz=1"]) == 2
    assert "unknown key(s) epochz" in capsys.readouterr().err


@pytest.mark.parametrize("details", [False, True])
def test_list(capsys, details):
    assert main(["list", "--details"] if details else ["list"]) == 0
    out = capsys.readouterr().out
    assert "strategies:" in out and "finetune" in out and "bigru (text)" in out
    assert ("margin: float" in out) == details


def test_decoupled_pair_answers_one_direction_each(tmp_path):
    from ccrbench.benchmarks.shapes import shapes_benchmark
    from ccrbench.config import apply_overrides, from_dict
    from ccrbench.build import build_learners

    config = from_dict(apply_overrides({}, [*TINY, "strategy=ewc", "decoupled=true"]))
    bm = shapes_benchmark(**config.benchmark.options)
    a, b = build_learners(config, bm, SummaryWriter(str(tmp_path / "tb")), progress=False)
    assert (a.metrics.directions, a.plugin.branches) == (("i2t",), "image")
    assert (b.metrics.directions, b.plugin.branches) == (("t2i",), "text")
    assert a.strategy.model is not b.strategy.model  # decoupled runs: tests/strategies/test_every_strategy.py


def test_decoupled_needs_a_branch_option(tmp_path, capsys):
    assert run_cli(tmp_path / "x", "decoupled=true") == 2
    assert "no 'branches' option" in capsys.readouterr().err
