import pytest
import torch

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.lwf import distillation_loss, drop_diagonal, row_kl
from tests.training.test_template import tiny_strategy


def logits(seed, b=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, b, generator=g) * 3


@pytest.mark.parametrize("offdiagonal_only", [False, True])
def test_distillation_is_zero_when_old_equals_new_and_positive_otherwise(offdiagonal_only):
    old = logits(0)
    assert float(distillation_loss(old, old.clone(), offdiagonal_only=offdiagonal_only)) == pytest.approx(0, abs=1e-6)
    assert float(distillation_loss(old, logits(1), offdiagonal_only=offdiagonal_only)) > 0.1


def test_distillation_sums_image_to_text_rows_and_text_to_image_columns():
    old, new = logits(0), logits(1)
    rows, columns = float(row_kl(old, new)), float(row_kl(old.T, new.T))
    assert rows != pytest.approx(columns)
    assert float(distillation_loss(old, new)) == pytest.approx(rows + columns)
    assert float(distillation_loss(old, old + 5.0)) == pytest.approx(0, abs=1e-5)  # a common shift changes no softmax


def test_offdiagonal_variant_ignores_the_positive_pairs():
    old = logits(0)
    new = old + torch.diag(torch.linspace(-4, 4, 6))  # only the positive pairs' similarities move
    assert float(distillation_loss(old, new)) > 0.1
    assert float(distillation_loss(old, new, offdiagonal_only=True)) == pytest.approx(0, abs=1e-6)
    assert drop_diagonal(torch.arange(9.0).view(3, 3)).tolist() == [[1, 2], [3, 5], [6, 7]]


def test_gradient_reaches_only_the_new_model():
    old, new = logits(0), logits(1).requires_grad_()
    distillation_loss(old, new).backward()
    assert new.grad is not None and float(new.grad.abs().sum()) > 0


def spy_added_losses(strategy, plugin):
    """Records (experience, loss before, loss after the plugin's before_backward) per iteration."""
    added = []
    hook = plugin.before_backward

    def spy(strategy, **kwargs):
        before = float(strategy.loss)
        hook(strategy, **kwargs)
        added.append((strategy.clock.train_exp_counter, before, float(strategy.loss)))

    plugin.before_backward = spy
    return added


def test_distils_from_the_second_task_on_with_one_frozen_copy():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("lwf", {"lam": 1.0})
    strategy.plugins.insert(0, plugin)
    added = spy_added_losses(strategy, plugin)
    strategy.train(bm.train_stream[0])
    assert plugin.teacher is not None and plugin.teacher is not strategy.model and not plugin.teacher.training
    assert all(not p.requires_grad for p in plugin.teacher.parameters())
    end_of_first = {n: p.detach().clone() for n, p in strategy.model.named_parameters()}
    assert all(torch.equal(p, end_of_first[n]) for n, p in plugin.teacher.named_parameters())

    strategy.train(bm.train_stream[1])
    first, second = [a for a in added if a[0] == 0], [a for a in added if a[0] == 1]
    assert first and all(before == after for _, before, after in first)  # nothing to distil from yet
    assert second and all(after >= before for _, before, after in second) and any(after > before for _, before, after in second)
    assert all(torch.equal(p, q) for p, q in zip(plugin.teacher.parameters(), strategy.model.parameters()))  # refreshed


def test_checkpoint_keeps_the_teachers_weights_not_the_module():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("lwf", {})
    assert plugin.state_dict() == {"teacher": None}
    strategy.plugins.insert(0, plugin)
    strategy.train(bm.train_stream[0])
    state = plugin.state_dict()
    assert set(state) == {"teacher"} and state["teacher"].keys() == strategy.model.state_dict().keys()
    assert not any(isinstance(v, torch.nn.Module) for v in state["teacher"].values())

    restored = STRATEGIES.build("lwf", {})
    restored.load_state_dict(state)
    assert restored.state_dict()["teacher"] is state["teacher"]  # kept until a model is at hand
    with torch.no_grad():
        for p in strategy.model.parameters():
            p.add_(1.0)  # the restored teacher must not be a copy of the current model
    restored.before_training_exp(strategy)
    teacher = restored.teacher.state_dict()
    assert all(torch.equal(teacher[n], w) for n, w in state["teacher"].items() if isinstance(w, torch.Tensor))
    assert not restored.teacher.training and restored.restored is None
