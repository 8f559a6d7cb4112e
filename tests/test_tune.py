import json
from pathlib import Path

import pytest

from ccrbench.cli import main
from ccrbench.registry import ConfigError
from ccrbench.suite import expand_spec, expand_suite, read_suite
from ccrbench.tune import Criterion, select, tune_grid
from tests.tiny import TINY


def write_tune_suite(tmp_path: Path, strategies: dict, **extra) -> Path:
    (tmp_path / "base.yaml").write_text("strategy: finetune\n")
    suite = tmp_path / "tune.yaml"
    suite.write_text(json.dumps({"base": "base.yaml", "set": [*TINY, "benchmark.tasks=[signs]", "benchmark.val_images=3"], "strategies": strategies, **extra}))
    return suite


def fake_results(path: Path, value: float, medr: float = 5.0) -> None:
    scope = {"i2t_r10": value, "t2i_r10": value, "i2t_medr": medr, "t2i_medr": medr}
    final = {p: {"average": scope, "all": {k: v - 1 for k, v in scope.items()}} for p in ("reindex", "noreindex")}
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"complete": True, "final": final}))


def test_grid_runs_on_val_and_selection_is_the_argmax(tmp_path):
    suite = write_tune_suite(
        tmp_path,
        {"ewc": {"strategy.lam": [1, 10, 100]}, "lwf": {"strategy.lam": [1, 2], "strategy.temperature": [0.1, 0.2]}},
        axes={"seed": [0, 1]},
    )
    criterion, selection_path, points = tune_grid(suite)
    assert criterion == Criterion() and selection_path is None
    assert [(p.strategy, p.values) for p in points][:4] == [
        ("ewc", {"strategy.lam": 1}),
        ("ewc", {"strategy.lam": 10}),
        ("ewc", {"strategy.lam": 100}),
        ("lwf", {"strategy.lam": 1, "strategy.temperature": 0.1}),
    ]
    runs = [r for p in points for r in p.runs]
    assert len(runs) == (3 + 4) * 2 and runs[0].name == "ewc/lam-1__seed-0"
    assert all(r.config.eval.split == "val" for r in runs)
    assert points[1].runs[1].config.strategy.options["lam"] == 10 and points[1].runs[1].config.seed == 1
    out = tmp_path / "out"
    # ewc: lam 10 is best on average over its two seeds, although lam 100 has the best single run
    scores = {"ewc/lam-1": (50, 50), "ewc/lam-10": (60, 62), "ewc/lam-100": (70, 40)}
    for point in points:
        for r, seed in zip(point.runs, (0, 1)):
            prefix = r.name.rsplit("__", 1)[0]
            fake_results(out / r.name, scores.get(prefix, (30, 30))[seed])
    selection = select(criterion, points, out)
    ewc = selection["strategies"]["ewc"]
    assert ewc["winner"] == {"strategy.lam": 10} and ewc["score"] == 61
    assert ewc["grid"] == {"strategy.lam": [1, 10, 100]} and [s["score"] for s in ewc["scores"]] == [50, 61, 55]
    assert selection["strategies"]["lwf"]["winner"] == {"strategy.lam": 1, "strategy.temperature": 0.1}  # ties: first
    assert selection["split"] == "val" and "known-task average r10" in selection["criterion"]["description"]
    # ranks: the lowest wins
    for point in points:
        for r in point.runs:
            fake_results(out / "medr" / r.name, 50, medr=3.0 if r.name.startswith("ewc/lam-100") else 9.0)
    assert select(Criterion(metric="medr"), points, out / "medr")["strategies"]["ewc"]["winner"] == {"strategy.lam": 100}


def test_bad_tune_suites_are_clear_errors(tmp_path, capsys):
    too_many = write_tune_suite(tmp_path, {"ewc": {"strategy.lam": [1, 2, 3, 4, 5]}})
    with pytest.raises(ConfigError, match=r"strategies.ewc.strategy.lam: expected a list of 1 to 4 values"):
        tune_grid(too_many)
    test_split = write_tune_suite(tmp_path, {"ewc": {"eval.split": ["test"]}})
    with pytest.raises(ConfigError, match="eval.split cannot be tuned"):
        tune_grid(test_split)
    bad_scope = write_tune_suite(tmp_path, {"ewc": {"strategy.lam": [1]}}, criterion={"metric": "r1", "scope": "both"})
    with pytest.raises(ConfigError, match="criterion.scope: expected one of 'average', 'all', got 'both'"):
        tune_grid(bad_scope)
    assert tune_grid(write_tune_suite(tmp_path, {"ewc": {}}, criterion={"metric": "r1", "scope": "all"}))[0] == Criterion("r1", "all")
    typo = write_tune_suite(tmp_path, {"ewc": {"strategy.lamb": [1]}})
    assert main(["tune", str(typo), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key(s) lamb" in capsys.readouterr().err
    no_selection = tmp_path / "suite.yaml"
    no_selection.write_text("base: base.yaml\nselection: missing.json\n")
    with pytest.raises(ConfigError, match="missing.json does not exist; write it with `ccrbench tune`"):
        expand_suite(no_selection)


def test_tune_end_to_end_then_a_suite_reads_the_selection(tmp_path, capsys):
    suite = write_tune_suite(tmp_path, {"ewc": {"strategy.lam": [0.0, 1.0e6]}}, selection="chosen/selection.json")
    out = tmp_path / "runs"
    assert main(["tune", str(suite), "--out", str(out)]) == 0
    selection = json.loads((tmp_path / "chosen" / "selection.json").read_text())
    assert "# Hyper-parameters selected on the validation split" in (tmp_path / "chosen" / "selection.md").read_text()
    scores = {}
    for lam in ("0.0", "1000000.0"):
        results = json.loads((out / "ewc" / f"lam-{lam}" / "results.json").read_text())
        assert results["split"] == "val" and results["config"]["eval"]["split"] == "val"
        markdown = (out / "ewc" / f"lam-{lam}" / "results.md").read_text()
        assert "seed 0, val split)" in markdown and "| plasticity | noreindex |" in markdown
        # what makes numbers comparable across machines
        machine, checksums = results["machine"], results["data_checksums"]
        assert machine["cpu"] and machine["torch_threads"] >= 1 and "PyTorch built with" in machine["torch_config"]
        assert isinstance(machine["mkldnn"], bool) and machine["cpu_capability"]
        assert set(checksums) == {"train", "test", "val"} and len(set(checksums.values())) == 3
        assert all(len(c) == 64 for c in checksums.values())
        # 3 validation images per task (10 test images): a text->image rank among them is at most 3
        assert all(s["metrics"][p][str(t)]["t2i_meanr"] <= 3 for s in results["stages"] for p in ("reindex", "noreindex") for t in s["tasks"])
        scores[float(lam)] = sum(results["final"][p]["average"][f"{d}_r10"] for p in ("reindex", "noreindex") for d in ("i2t", "t2i")) / 4
    winner = max(scores, key=scores.get)  # the argmax of the criterion, computed here from results.json
    assert selection["strategies"]["ewc"]["winner"] == {"strategy.lam": winner}
    assert [s["score"] for s in selection["strategies"]["ewc"]["scores"]] == pytest.approx(list(scores.values()))
    assert "selection:" in capsys.readouterr().out
    final = tmp_path / "final.yaml"
    final.write_text(json.dumps({"base": "base.yaml", "set": TINY, "selection": "chosen/selection.json",
                                 "variants": [{"strategy": ["finetune", "ewc"]}, {"strategy": "ewc", "decoupled": True}]}))
    runs = {r.name: r.config for r in expand_suite(final)}
    assert runs["strategy-ewc"].strategy.options["lam"] == winner == runs["strategy-ewc__decoupled-true"].strategy.options["lam"]
    assert runs["strategy-ewc"].eval.split == "test" and runs["strategy-finetune"].strategy.name == "finetune"
    # a second call finds every run finished and selects again without training
    assert main(["tune", str(suite), "--out", str(out), "--skip-existing"]) == 0
    assert json.loads((tmp_path / "chosen" / "selection.json").read_text()) == selection


def test_standard_tune_and_paper_suites(tmp_path):
    _, selection_path, points = tune_grid("configs/suites/tune_shapes.yaml")
    assert selection_path.resolve() == Path("results/paper_table/selection.json").resolve()
    assert {p.strategy for p in points} >= {"ewc", "mas", "lwf", "replay"}
    assert all(len(v) <= 4 for p in points for v in read_suite("configs/suites/tune_shapes.yaml", ["base", "axes", "criterion", "selection", "strategies"])["strategies"][p.strategy].values())
    assert all(r.config.eval.split == "val" and r.config.train.epochs == 6 for p in points for r in p.runs)
    chosen = {"ewc": {"strategy.lam": 123.0}, "lwf": {"strategy.lam": 0.5, "strategy.temperature": 0.2}}
    fake = tmp_path / "selection.json"
    fake.write_text(json.dumps({"strategies": {k: {"winner": v} for k, v in chosen.items()}}))
    spec = {**read_suite("configs/suites/paper_table.yaml"), "selection": str(fake)}
    runs = {r.name: r.config for r in expand_spec(spec, Path("configs/suites/paper_table.yaml"))}
    assert len(runs) == 9 * 2 * 3
    assert runs["strategy-ewc__decoupled-true__shared_layers-1__seed-2"].strategy.options["lam"] == 123.0
    assert runs["strategy-lwf__shared_layers-0__seed-0"].strategy.options["temperature"] == 0.2
    assert all(c.eval.split == "test" for c in runs.values())
