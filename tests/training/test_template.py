import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from ccrbench.build import seed_everything
from ccrbench.models.build import model_from_config
from ccrbench.config import apply_overrides, from_dict
from ccrbench.evaluation.plugin import RetrievalMetrics
from ccrbench.registry import BENCHMARKS, LOSSES
from ccrbench.training.template import NonFiniteLossError, RetrievalTemplate
from tests.tiny import TINY


def tiny_strategy():
    config = from_dict(apply_overrides({}, TINY))
    seed_everything(0)
    bm = BENCHMARKS.build("shapes", config.benchmark.options)
    model = model_from_config(config.model, bm.train_captions)
    metrics = RetrievalMetrics(ks=(1, 5))
    strategy = RetrievalTemplate(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        criterion=LOSSES.build("infonce", {}),
        train_mb_size=16,
        train_epochs=1,
        eval_mb_size=4,
        evaluator=EvaluationPlugin(metrics, loggers=[]),
    )
    return bm, strategy, metrics


def test_stored_database_is_not_reembedded():
    bm, strategy, metrics = tiny_strategy()
    strategy.train(bm.train_stream[0])
    strategy.eval([bm.test_stream[0]])
    indexed = metrics.stored[0].text.clone()
    strategy.train(bm.train_stream[1])
    strategy.eval([bm.test_stream[0], bm.test_stream[1]])
    assert torch.equal(metrics.stored[0].text, indexed)  # the database of task 0 kept its embeddings
    assert not torch.equal(metrics.current[0].text, indexed)  # while the encoders moved on
    assert metrics.stored[1] is metrics.current[1]  # task 1 was indexed right after it was learned
    stage = metrics.stages[-1]["metrics"]
    assert stage["noreindex"]["1"] == stage["reindex"]["1"]
    assert stage["noreindex"]["0"] != stage["reindex"]["0"]


def test_batches_hold_images_captions_and_links():
    bm, strategy, _ = tiny_strategy()
    strategy.experience = bm.test_stream[0]
    strategy.adapted_dataset = bm.test_stream[0].dataset
    strategy.make_eval_dataloader()
    batch = next(iter(strategy.dataloader))
    assert batch.images.shape[0] == 4 and batch.text.ids.shape[0] == 20  # 4 images, 5 captions each
    assert batch.text_to_image.tolist() == [i for i in range(4) for _ in range(5)]
    assert batch.task_ids.tolist() == [0] * 4


def test_nan_loss_stops_training_with_a_clear_error():
    bm, strategy, _ = tiny_strategy()
    with torch.no_grad():
        strategy.model.image_proj.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="training loss is nan"):
        strategy.train(bm.train_stream[0])


def test_shared_layers_are_one_module_in_both_branches():
    from ccrbench.config import apply_overrides, from_dict

    config = from_dict(apply_overrides({}, [*TINY, "model.shared_layers=1"]))
    model = model_from_config(config.model, ("a red square",))
    calls = []
    model.shared.register_forward_hook(lambda *_: calls.append(1))
    images = torch.rand(2, 3, 32, 32)
    model(images, model.tokenize(["a red square", "a blue circle"]))
    assert len(calls) == 2  # the same module embedded both modalities
    assert any(n.startswith("shared.") for n in model.branch_parameters("image"))
    assert any(n.startswith("shared.") for n in model.branch_parameters("text"))
    plain = model_from_config(from_dict(apply_overrides({}, TINY)).model, ("a red square",))
    assert len(plain.shared) == 0
