"""Input that gave a silently wrong result or an unclear error (issue 22): non-finite embeddings,
an empty config file, a failing plugin hook."""

import pytest
import torch

from ccrbench.cli import main
from ccrbench.evaluation.retrieval import NonFiniteEmbeddingError, evaluate_retrieval, retrieval_ranks
from tests.tiny import run_args


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("side", ["image", "text"])
def test_the_metric_core_refuses_non_finite_embeddings(side, value):
    torch.manual_seed(0)
    images, texts = torch.randn(6, 4), torch.randn(12, 4)
    (images if side == "image" else texts)[3, 1] = value  # one NaN row scored every query perfect
    with pytest.raises(NonFiniteEmbeddingError, match=rf"{side} embeddings \[3\] \(1 of {6 if side == 'image' else 12}\) hold NaN or infinite"):
        retrieval_ranks(images, texts, torch.arange(6).repeat(2))


def test_finite_ties_still_count_against_the_query():
    collapsed = torch.zeros(5, 3)  # every score 0: finite, all tied
    ranks = retrieval_ranks(collapsed, collapsed.repeat(2, 1), torch.arange(5).repeat(2))
    assert ranks["i2t"].tolist() == [8] * 5 and ranks["t2i"].tolist() == [4] * 10  # the worst ranks
    assert evaluate_retrieval(collapsed, collapsed.repeat(2, 1), torch.arange(5).repeat(2))["i2t_r1"] == 0


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_config_file_is_refused(tmp_path, capsys, text):
    config = tmp_path / "empty.yaml"
    config.write_text(text)
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"error: {config}: the file is empty (or only comments)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_failing_plugin_hook_is_named_before_the_traceback(tmp_path, capsys):
    with pytest.raises(ZeroDivisionError):
        main(run_args(tmp_path / "run", "strategy=tests.probes:Failing", "benchmark.tasks=[blocks]"))
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert first == "error: plugin tests.probes.Failing, hook after_training_exp, raised ZeroDivisionError: a bug in the plugin (traceback below)"
