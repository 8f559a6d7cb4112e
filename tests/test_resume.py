import json

import ccrbench.training.template as template
from ccrbench.cli import main
from tests.tiny import TINY, interrupt_training


def run_cli(out, *extra, resume=False):
    args = ["run", "--quiet", "--out", str(out)] + (["--resume"] if resume else [])
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return main(args)


def test_the_cli_resumes_an_interrupted_run_and_never_overwrites_it(tmp_path, monkeypatch):
    """That a resumed run gives the uninterrupted metrics is checked for every strategy in
    tests/strategies/test_every_strategy.py; here, what the command line does around it."""
    strategy = "ewc"
    resume_training = interrupt_training(monkeypatch, at_call=2)
    assert run_cli(tmp_path / "crash", f"strategy={strategy}") == 130  # Ctrl-C
    partial = json.loads((tmp_path / "crash" / "results.json").read_text())
    assert not partial["complete"] and len(partial["stages"]) == 1
    resume_training()

    assert run_cli(tmp_path / "crash", f"strategy={strategy}") == 2  # no silent overwrite
    assert run_cli(tmp_path / "crash", f"strategy={strategy}", "train.lr=0.1", resume=True) == 2  # other config
    assert run_cli(tmp_path / "crash", f"strategy={strategy}", resume=True) == 0
    resumed = json.loads((tmp_path / "crash" / "results.json").read_text())
    assert resumed["complete"] and len(resumed["stages"]) == 3
    assert resumed["stages"][0] == partial["stages"][0]  # the finished stage is kept, not redone
    assert len(partial["stage_seconds"]) == 1 and len(resumed["stage_seconds"]) == 3 and min(resumed["stage_seconds"]) > 0
    assert resumed["stage_seconds"][0] == partial["stage_seconds"][0]  # the first stage's time is the one it took


def test_nan_loss_stops_the_run_and_keeps_finished_stages(tmp_path, monkeypatch, capsys):
    real_criterion = template.RetrievalTemplate.criterion

    def nan_in_second_experience(self):
        loss = real_criterion(self)
        return loss * float("nan") if self.clock.train_exp_counter == 1 else loss

    monkeypatch.setattr(template.RetrievalTemplate, "criterion", nan_in_second_experience)
    assert run_cli(tmp_path / "nan") == 3
    assert "training loss is nan" in capsys.readouterr().err
    kept = json.loads((tmp_path / "nan" / "results.json").read_text())
    assert len(kept["stages"]) == 1 and not kept["complete"]
    assert (tmp_path / "nan" / "checkpoint.pt").exists()
