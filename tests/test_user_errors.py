"""A user's mistake is one clear line on stderr and exit 2 (130 for Ctrl-C), never a traceback."""

import json
import shutil

import pytest
import torch

from ccrbench.cli import main
from ccrbench.config import from_dict, load_config
from ccrbench.registry import ConfigError
from ccrbench.run_dir import open_run_dir
from tests.tiny import TINY, interrupt_training, run_args


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny run evaluated at K = 1 and 5 only (no R@10)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(run_args(out, "eval.ks=[1,5]")) == 0
    return out


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"epochs": 0}}, "train.epochs: must be >= 1, got 0"),
        ({"train": {"epochs": -2}}, "train.epochs: must be >= 1"),
        ({"train": {"batch_size": 0}}, "train.batch_size: must be >= 1"),
        ({"train": {"lr": 0}}, "train.lr: must be > 0"),
        ({"eval": {"batch_size": 0}}, "eval.batch_size: must be >= 1"),
        ({"eval": {"ks": [0, 5]}}, r"eval.ks\[0\]: must be >= 1"),
        ({"eval": {"ks": []}}, "eval.ks: give at least 1 item"),
        ({"benchmark": {"train_images": 0}}, "benchmark.train_images: must be >= 1"),
        ({"benchmark": {"test_images": 0}}, "benchmark.test_images: must be >= 1"),
        ({"benchmark": {"tasks": ["blocks", "blocs"]}}, r"benchmark.tasks\[1\]: expected one of 'blocks', 'curves', 'signs'"),
        ({"benchmark": {"tasks": []}}, "benchmark.tasks: give at least 1 item"),
        ({"device": "gpu0"}, "device: 'gpu0' is not a torch device"),
        ({"model": {"image_encoder": "bigru"}}, "model.image_encoder: 'bigru' is a text encoder; image encoders: .*small_cnn"),
        ({"decoupled": True}, "decoupled: strategy 'finetune' has no 'branches' option"),
    ],
)
def test_out_of_range_and_inconsistent_values_fail_at_load(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_fails_at_load():
    with pytest.raises(ConfigError, match="device: 'cuda' requested but this machine has 0 cuda device"):
        from_dict({"device": "cuda"})


def test_epochs_zero_is_refused_before_the_run_directory_exists(tmp_path, capsys):
    assert main(run_args(tmp_path / "run", "train.epochs=0")) == 2
    one_line_error(capsys, "train.epochs: must be >= 1")
    assert not (tmp_path / "run").exists()


def test_unknown_task_leaves_no_run_directory_behind(tmp_path, capsys):
    assert main(run_args(tmp_path / "run", "benchmark.tasks=[blocks,blocs]")) == 2
    one_line_error(capsys, "benchmark.tasks[1]")
    assert not (tmp_path / "run").exists()


def test_floats_in_yaml_1_2_notation_are_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 5e-4\n  weight_decay: 1E-6\n")
    config = load_config(path, ["train.grad_clip=1e+1"])
    assert (config.train.lr, config.train.weight_decay, config.train.grad_clip) == (5e-4, 1e-6, 10.0)
    assert load_config(None, ["train.lr=1e-4"]).train.lr == 1e-4
    with pytest.raises(ConfigError, match="train.lr: expected float, got 'fast'"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="train.epochs: expected int, got '1e1'"):
        load_config(None, ["train.epochs=1e1"])


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "train.lr=["], ["--set 'train.lr=['", "not valid YAML"]),
        (["--config", "configs"], ["configs is a directory"]),
        (["--config", "no_such.yaml"], ["no_such.yaml does not exist"]),
        (["--resume", "--overwrite"], ["--resume and --overwrite"]),
    ],
)
def test_command_line_mistakes_are_one_line(tmp_path, capsys, args, fragments):
    assert main([*run_args(tmp_path / "run"), *args]) == 2
    one_line_error(capsys, *fragments)


def test_missing_base_names_the_referring_file(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    assert main(["run", "--out", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml")]) == 2
    one_line_error(capsys, f"{tmp_path / 'c.yaml'}: base: nowhere.yaml", "does not exist")


def test_encoder_build_errors_name_the_config_key(tmp_path, capsys):
    assert main(run_args(tmp_path / "run", "model.image_encoder={name: resnet18, weights: /no/such.pth}")) == 2
    one_line_error(capsys, "model.image_encoder", "/no/such.pth")
    assert not open_run_dir(tmp_path / "run", load_config(None, TINY), overwrite=False, resume=False)  # the corrected run may start


def test_a_run_without_k10_prints_and_reports_its_own_ks(finished, tmp_path, capsys):
    results = json.loads((finished / "results.json").read_text())
    assert results["ks"] == [1, 5] and "i2t_r10" not in results["final"]["reindex"]["all"]
    shutil.copytree(finished, tmp_path / "runs" / "a")
    assert main(["report", str(tmp_path / "runs")]) == 0  # default metric: the runs' own
    assert "| i2t r5 |" in capsys.readouterr().out
    for metric in ("r10", "foo"):
        assert main(["report", str(tmp_path / "runs"), "--metric", metric]) == 2
        one_line_error(capsys, f"--metric {metric}", "r1, r5, medr, meanr")


def test_report_skips_a_corrupt_results_file_and_refuses_a_folder_without_finished_runs(finished, tmp_path, capsys):
    shutil.copytree(finished, tmp_path / "runs" / "good")
    (tmp_path / "runs" / "bad").mkdir()
    (tmp_path / "runs" / "bad" / "results.json").write_text('{"complete": tr')
    assert main(["report", str(tmp_path / "runs")]) == 0
    err = capsys.readouterr().err
    assert f"skipping {tmp_path / 'runs' / 'bad' / 'results.json'}: not valid JSON" in err
    shutil.rmtree(tmp_path / "runs" / "good")
    (tmp_path / "runs" / "partial").mkdir()
    (tmp_path / "runs" / "partial" / "results.json").write_text('{"complete": false}')
    assert main(["report", str(tmp_path / "runs")]) == 2
    assert "no finished run" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("damage", ["empty", "truncated"])
@pytest.mark.parametrize("file", ["checkpoint.pt", "config.yaml"])
def test_resume_with_a_damaged_file_names_it(finished, tmp_path, capsys, damage, file):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    data = (out / file).read_bytes()
    (out / file).write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    (out / "results.json").write_text('{"complete": false}')  # as if interrupted
    assert main(run_args(out, "eval.ks=[1,5]", flags=["--resume"])) == 2
    one_line_error(capsys, str(out / file), "--overwrite")


def test_resume_mismatch_names_the_differing_keys(finished, tmp_path, capsys):
    shutil.copytree(finished, tmp_path / "run")
    assert main(run_args(tmp_path / "run", "eval.ks=[1,5]", "train.lr=0.1", flags=["--resume"])) == 2
    one_line_error(capsys, "train.lr (saved 0.0005, given 0.1)")


def test_resuming_a_finished_run_does_nothing(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = {p.name: p.read_bytes() for p in [*out.iterdir(), *(out / "tb").rglob("*")] if p.is_file()}
    assert main(run_args(out, "eval.ks=[1,5]", flags=["--resume"])) == 0
    assert "already complete" in capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in [*out.iterdir(), *(out / "tb").rglob("*")] if p.is_file()}
    assert after == before  # no new TensorBoard events (hparams), no rewritten results


def test_ctrl_c_exits_130_with_the_resume_command(tmp_path, monkeypatch, capsys):
    resume_training = interrupt_training(monkeypatch, at_call=2)
    out = tmp_path / "run"
    args = run_args(out, flags=["--overwrite"])
    assert main(args) == 130
    err = one_line_error(capsys, "interrupted", f"{out}", "blocks", "--resume")
    command = err.partition("continue with: ")[2]
    assert command.startswith("ccrbench run ") and "--overwrite" not in command
    resume_training()
    assert main(command.split()[1:]) == 0  # the printed command works
    assert json.loads((out / "results.json").read_text())["complete"]


def test_full_disk_is_a_clean_message_and_leaves_no_temp_file(tmp_path, monkeypatch, capsys):
    import ccrbench.checkpoint as checkpoint

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", no_space)
    out = tmp_path / "run"
    assert main(run_args(out)) == 2
    one_line_error(capsys, "No space left on device", "checkpoint.pt")
    assert not list(out.glob(".*.tmp")) and json.loads((out / "results.json").read_text())["stages"]


def test_a_suite_names_a_corrupt_results_file_instead_of_a_traceback(tmp_path):
    from ccrbench.suite import run_status

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text('{"complete": tru')
    with pytest.raises(ConfigError, match=r"run/results.json: not valid JSON"):
        run_status(tmp_path / "run")
