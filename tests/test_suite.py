import json

import pytest

from ccrbench.cli import main
from ccrbench.registry import ConfigError
from ccrbench.suite import expand_suite, run_name, run_suite
from tests.tiny import TINY


def write_suite(tmp_path, variants, axes=None):
    base = tmp_path / "base.yaml"
    base.write_text("strategy: finetune\n")
    suite = tmp_path / "suite.yaml"
    spec = {"base": "base.yaml", "set": TINY, "variants": variants}
    if axes:
        spec["axes"] = axes
    suite.write_text(json.dumps(spec))
    return suite


def test_grid_expansion_and_stable_names(tmp_path):
    suite = write_suite(
        tmp_path,
        [{"strategy": ["finetune", "ewc"]}, {"strategy": "mas", "decoupled": True}],
        axes={"model.shared_layers": [0, 1], "seed": [3]},
    )
    runs = expand_suite(suite)
    names = [r.name for r in runs]
    assert names == [
        "strategy-finetune__shared_layers-0__seed-3",
        "strategy-finetune__shared_layers-1__seed-3",
        "strategy-ewc__shared_layers-0__seed-3",
        "strategy-ewc__shared_layers-1__seed-3",
        "strategy-mas__decoupled-true__shared_layers-0__seed-3",
        "strategy-mas__decoupled-true__shared_layers-1__seed-3",
    ]
    assert names == [r.name for r in expand_suite(suite)]  # stable
    mas = runs[-1].config
    assert mas.decoupled and mas.model.shared_layers == 1 and mas.seed == 3 and mas.train.epochs == 1
    assert run_name([("strategy.lam", 0.5)]) == "lam-0.5"


def test_bad_suite_names_the_run(tmp_path):
    suite = write_suite(tmp_path, [{"strategy": ["finetune", "nope"]}])
    with pytest.raises(ConfigError, match="suite.yaml: run strategy-nope: .*unknown strategy 'nope'"):
        expand_suite(suite)


def test_standard_suites_expand():
    assert len(expand_suite("configs/suites/paper_table.yaml")) == 14
    assert len(expand_suite("configs/suites/smoke.yaml")) == 6


def test_skip_existing_and_failures_do_not_stop_the_suite(tmp_path, monkeypatch):
    suite = write_suite(tmp_path, [{"strategy": ["finetune", "joint"]}])
    out = tmp_path / "out"
    assert run_suite(suite, out) == {"strategy-finetune": None, "strategy-joint": None}
    first = (out / "strategy-joint" / "results.json").read_text()
    # without --skip-existing, existing runs are errors, never overwritten
    outcome = run_suite(suite, out)
    assert all("exists" in outcome[n] for n in outcome)
    assert (out / "strategy-joint" / "results.json").read_text() == first

    import ccrbench.runner

    calls = []
    real_run = ccrbench.runner.run

    def failing_run(config, out_dir, **kwargs):
        calls.append(config.strategy.name)
        if config.strategy.name == "finetune":
            raise RuntimeError("boom")
        return real_run(config, out_dir, **kwargs)

    monkeypatch.setattr(ccrbench.runner, "run", failing_run)
    (out / "strategy-joint" / "results.json").unlink()  # joint looks unfinished now
    outcome = run_suite(suite, out, skip_existing=True)
    assert calls == ["joint"]  # finished finetune skipped, unfinished joint resumed
    assert outcome["strategy-joint"] is None and outcome["strategy-finetune"] is None

    suite2 = write_suite(tmp_path, [{"strategy": ["finetune", "joint"], "seed": 5}])
    outcome = run_suite(suite2, tmp_path / "out2")
    assert "boom" in outcome["strategy-finetune__seed-5"] and outcome["strategy-joint__seed-5"] is None


def test_parallel_jobs_give_the_sequential_results(tmp_path):
    suite = write_suite(tmp_path, [{"strategy": ["finetune", "joint"]}])
    assert run_suite(suite, tmp_path / "par", jobs=2) == {"strategy-finetune": None, "strategy-joint": None}
    assert (tmp_path / "par" / "strategy-joint" / "results.json").exists()


def test_suite_cli_reports_failures(tmp_path, capsys):
    suite = write_suite(tmp_path, [{"strategy": ["finetune"]}])
    assert main(["suite", str(suite), "--out", str(tmp_path / "o")]) == 0
    assert main(["suite", str(suite), "--out", str(tmp_path / "o")]) == 1
    assert "FAILED strategy-finetune" in capsys.readouterr().err
    assert main(["suite", str(suite), "--out", str(tmp_path / "o"), "--skip-existing"]) == 0
