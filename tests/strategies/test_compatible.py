import pytest
import torch
import torch.nn.functional as F

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.compatible import compatibility_loss
from ccrbench.strategies.lwf import frozen_copy
from tests.training.test_template import tiny_strategy


def naive_compatibility(new, old, database, temperature):
    """Mean over queries of sum_j p_old(j) * log(p_old(j) / p_new(j)) over the old database."""
    total = 0.0
    for q in range(len(new)):
        p_old = torch.softmax(torch.tensor([float(old[q] @ d) / temperature for d in database]), 0)
        p_new = torch.softmax(torch.tensor([float(new[q] @ d) / temperature for d in database]), 0)
        total += float((p_old * (p_old / p_new).log()).sum())
    return total / len(new)


def unit(n, seed, d=5):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_loss_matches_a_naive_loop():
    new, old, database = unit(4, 0), unit(4, 1), unit(7, 2)
    got = float(compatibility_loss(new, old, database, temperature=0.1))
    assert got == pytest.approx(naive_compatibility(new, old, database, 0.1), rel=1e-4)


def test_loss_is_zero_for_unchanged_queries_and_grows_with_their_drift():
    old, database = unit(6, 3, d=8), unit(9, 4, d=8)
    losses = [float(compatibility_loss(F.normalize(old + eps * unit(6, 5, d=8), dim=1), old, database, temperature=0.07)) for eps in (0.0, 0.2, 0.8)]
    assert losses[0] == pytest.approx(0, abs=1e-6) and 0 < losses[1] < losses[2]


def embeddings_after_second_task(lam):
    """(old, new) embeddings of a fixed batch: after task 0, and after task 1 trained with `lam`."""
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("compatible", {"lam": lam})
    strategy.plugins.insert(0, plugin)
    strategy.train(bm.train_stream[0])
    batch = strategy.collate([bm.test_stream[0].dataset[i] for i in range(8)])

    def embed(model):
        with torch.no_grad():
            return model.eval()(batch.images, batch.text)

    old = embed(frozen_copy(strategy.model))
    strategy.train_epochs = 5  # one Adam step moves every weight by about lr, whatever the loss
    strategy.train(bm.train_stream[1])
    return old, embed(strategy.model)


def test_a_large_weight_keeps_the_new_encoders_compatible_with_the_old_embeddings():
    drift = {}
    for lam in (0.0, 100.0):
        (old_image, old_text), (new_image, new_text) = embeddings_after_second_task(lam)
        drift[lam] = [float(F.cosine_similarity(o, n).mean()) for o, n in ((old_image, new_image), (old_text, new_text))]
    assert drift[100.0][0] > drift[0.0][0] and sum(drift[100.0]) > sum(drift[0.0]), drift
    assert min(drift[100.0]) > 0.97, drift


def test_branches_restrict_the_loss_to_one_modalitys_queries():
    bm, strategy, _ = tiny_strategy()
    teacher = frozen_copy(strategy.model)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))  # the previous model differs from the current one
    strategy.mbatch = strategy.collate([bm.train_stream[0].dataset[i] for i in range(6)])
    strategy.mb_output = strategy.forward()
    losses = {}
    for branches in ("both", "image", "text"):
        plugin = STRATEGIES.build("compatible", {"branches": branches})
        plugin.teacher = teacher
        strategy.loss = torch.zeros(())
        plugin.before_backward(strategy)
        losses[branches] = float(strategy.loss)
    assert losses["image"] > 0 and losses["text"] > 0
    assert losses["both"] == pytest.approx(losses["image"] + losses["text"], rel=1e-5)


def test_its_term_is_recorded_for_the_training_curves():
    bm, strategy, _ = tiny_strategy()
    strategy.plugins.insert(0, STRATEGIES.build("compatible", {"lam": 2.0}))
    strategy.train(bm.train_stream[0])
    assert "compatibility" not in strategy.loss_terms  # no previous model on the first task
    strategy.train(bm.train_stream[1])
    term = strategy.loss_terms["compatibility"]
    assert not term.requires_grad and float(term) > 0
