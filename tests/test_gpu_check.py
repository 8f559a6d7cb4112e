"""scripts/gpu_check.py's dry run: the GPU check's code at tiny sizes on the CPU writes its summary
(device, versions, command), its log and every run's results; a failed check is recorded, the
others are kept."""

import importlib.util
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(gpu_check, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    summary = gpu_check.main(["--dry-run", "--strategies", "mas", "--out", str(out), "--work", str(out / "work")])
    return out, summary


def test_dry_run_writes_the_summary_with_device_versions_and_command(dry_run):
    out, summary = dry_run
    assert {"summary.json", "summary.md", "gpu_check.log", "runs.tar.gz"} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / "summary.json").read_text())
    assert saved["command"].startswith("python scripts/gpu_check.py --dry-run")
    env = saved["environment"]
    assert env["device"].startswith("cpu") and env["torch"] == torch.__version__ and env["cuda"] == torch.version.cuda
    assert {name: c["status"] for name, c in saved["checks"].items()} == dict.fromkeys(["demo", "fp16", "towers", "ranks", "cpu"], "ok")
    markdown = (out / "summary.md").read_text()
    assert saved["command"] in markdown and env["device"] in markdown and f"torch {torch.__version__}" in markdown
    assert "--- cpu: ok" in (out / "gpu_check.log").read_text()


def test_demo_runs_keep_printed_lines_results_and_the_cpu_difference(dry_run):
    out, summary = dry_run
    runs = {**summary["checks"]["demo"]["runs"], **summary["checks"]["cpu"]["runs"]}
    assert set(runs) == {"cpu_fp32_mas", "cpu_bf16_mas", "cpu_reference_mas"}
    for run in runs.values():
        assert run["exit_code"] == 0 and run["command"].startswith("ccrbench run --config configs/shapes_finetune.yaml")
        assert [line.split(":")[0] for line in run["printed"]] == ["experience 0", "stage 0 done (" + run["printed"][1].split("(")[1]]
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = set(tar.getnames())
        bf16 = json.load(tar.extractfile("cpu_bf16_mas/results.json"))
    assert {f"{r}/results.json" for r in runs} | {f"{r}.log" for r in runs} <= names
    assert bf16["config"]["train"]["precision"] == "bf16" and bf16["config"]["strategy"]["name"] == "mas"
    same = summary["checks"]["cpu"]["differences_vs_cpu"]["mas fp32"]  # the same CPU run twice: identical
    assert same["compared"] > 0 and same["max_abs_points"] == 0.0 and same["where"] is None


def test_fp16_records_the_scale_after_every_step(dry_run):
    fp16 = dry_run[1]["checks"]["fp16"]
    assert fp16["steps"] >= 5 and fp16["all_losses_finite"]
    scales = [fp16["initial_scale"]] + [c["to"] for c in fp16["scale_changes"]]
    assert scales[-1] == fp16["final_scale"]
    assert fp16["skipped_steps"] == sum(c["to"] < c["from"] for c in fp16["scale_changes"]) <= fp16["steps"]


def test_towers_and_ranks_figures(dry_run):
    towers, ranks = dry_run[1]["checks"]["towers"]["runs"], dry_run[1]["checks"]["ranks"]
    assert [(r["family"], r["train_top_blocks"]) for r in towers] == [("clip", 2), ("siglip", None)]  # both freezing paths
    for r in towers:
        assert r["images_per_s"] > 0 and r["steps"] >= 1 and r["peak_gib"] is None  # no GPU memory on the CPU
        assert (r["trainable"] < r["params"]) if r["train_top_blocks"] == 2 else (r["trainable"] == r["params"])
    assert (ranks["images"], ranks["captions"], ranks["fused"]) == (1100, 5000, False)
    assert ranks["ratio"] == pytest.approx(ranks["ranks_seconds"] / min(ranks["product_seconds"]))


def test_only_reruns_a_check_keeping_the_others_and_records_its_failure(gpu_check, dry_run, tmp_path, monkeypatch):
    out = tmp_path / "gpu"
    shutil.copytree(dry_run[0], out)

    def broken(args, device, work):
        raise RuntimeError("simulated CUDA error")

    monkeypatch.setitem(gpu_check.CHECKS, "ranks", broken)
    summary = gpu_check.main(["--dry-run", "--only", "ranks", "--out", str(out), "--work", str(out / "work")])
    assert summary["checks"]["ranks"]["status"] == "failed" and "simulated CUDA error" in summary["checks"]["ranks"]["error"]
    assert summary["checks"]["demo"] == dry_run[1]["checks"]["demo"]  # kept from the first run
    markdown = (out / "summary.md").read_text()
    assert "## ranks: FAILED" in markdown and "simulated CUDA error" in markdown
    with tarfile.open(out / "runs.tar.gz") as tar:
        assert "cpu_fp32_mas/results.json" in tar.getnames()


def test_a_run_that_raises_is_recorded_and_the_next_runs_still_run(gpu_check, tmp_path, monkeypatch):
    calls = []

    def crashing_run(argv):
        calls.append(argv)
        raise RuntimeError("CUDA error: simulated")

    monkeypatch.setattr(gpu_check, "ccrbench_main", crashing_run)
    summary = gpu_check.main(["--dry-run", "--only", "demo", "--strategies", "mas", "--out", str(tmp_path), "--work", str(tmp_path / "work")])
    demo = summary["checks"]["demo"]
    assert len(calls) == 2 and demo["status"] == "failed" and demo["failed"] == ["cpu_fp32_mas", "cpu_bf16_mas"]
    assert all(r["exit_code"] is None and "CUDA error: simulated" in r["error"] for r in demo["runs"].values())
    markdown = (tmp_path / "summary.md").read_text()
    assert "## demo: FAILED" in markdown and "cpu_bf16_mas: Traceback" in markdown
    assert "CUDA error: simulated" in (tmp_path / "work" / "cpu_bf16_mas.log").read_text()


def test_recall_differences_compare_every_recall_of_every_stage(gpu_check):
    def results(i2t, t2i, medr):
        return {"stages": [{"stage": 0, "metrics": {"reindex": {"0": {"i2t_r1": i2t, "t2i_r1": t2i, "i2t_medr": medr}}}}]}

    d = gpu_check.recall_differences(results(10.0, 20.0, 5.0), results(10.5, 18.0, 9.0))
    assert d == {"compared": 2, "max_abs_points": 2.0, "where": "stage 0 reindex 0 t2i_r1", "mean_abs_points": 1.25}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a GPU")
def test_cuda_without_a_gpu_says_how_to_try_it(gpu_check, tmp_path):
    with pytest.raises(SystemExit, match="no CUDA device.*--dry-run"):
        gpu_check.main(["--out", str(tmp_path)])
