import pytest
import torch

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.regularization import accumulate, ewc_importance, mas_importance, quadratic_penalty
from tests.training.test_template import tiny_strategy


def first_batches(strategy, bm, n=2):
    strategy.experience = bm.train_stream[0]
    strategy.adapted_dataset = bm.train_stream[0].dataset
    strategy.make_train_dataloader()
    return [b for _, b in zip(range(n), strategy.dataloader)]


def test_penalty_is_zero_at_the_anchor_and_grows_with_distance():
    anchor = {"w": torch.tensor([1.0, -2.0]), "b": torch.tensor([0.5])}
    omega = {"w": torch.tensor([2.0, 0.5]), "b": torch.tensor([3.0])}
    assert float(quadratic_penalty(anchor, anchor, omega)) == 0.0
    values = [float(quadratic_penalty({n: a + d for n, a in anchor.items()}, anchor, omega)) for d in (0.1, 0.2, 0.4)]
    assert values[0] < values[1] < values[2]
    assert values[1] == pytest.approx(4 * values[0])  # quadratic
    assert float(quadratic_penalty({"w": anchor["w"] + 1, "b": anchor["b"]}, anchor, omega)) == pytest.approx(2.5)


def test_accumulate_sums_with_decay():
    a, b = {"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}
    assert accumulate(None, a, decay=0.5) is a
    assert float(accumulate(a, b, decay=0.5)["w"]) == 3.5


@pytest.mark.parametrize("which", ["ewc", "mas"])
def test_importances_are_non_negative_and_use_both_inputs(which):
    bm, strategy, _ = tiny_strategy()
    model = strategy.model
    params = model.branch_parameters("both")
    batches = first_batches(strategy, bm)
    if which == "ewc":
        omega = ewc_importance(model, strategy._criterion, params, batches)
    else:
        omega = mas_importance(model, params, batches)
    assert all(bool((o >= 0).all()) for o in omega.values())
    assert float(omega["image_encoder.head.2.weight"].sum()) > 0  # the image input reached the loss
    assert float(omega["text_encoder.embed.weight"].sum()) > 0  # and so did the captions


@pytest.mark.parametrize("name", ["ewc", "mas"])
@pytest.mark.parametrize("branch", ["image", "text"])
def test_one_branch_only(name, branch):
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build(name, {"lam": 10.0, "branches": branch})
    strategy.plugins.insert(0, plugin)
    strategy.train(bm.train_stream[0])
    other = "text_" if branch == "image" else "image_"
    assert plugin.importances and all(not n.startswith(other) for n in plugin.importances)
    assert set(plugin.anchors) == set(plugin.importances)
    sizes = {n: o.shape for n, o in plugin.importances.items()}
    # the penalty moves only the protected branch
    model = strategy.model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    model.zero_grad()
    penalty = quadratic_penalty(model.branch_parameters(branch), plugin.anchors, plugin.importances)
    penalty.backward()
    assert float(penalty) > 0
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for n, p in model.named_parameters() if n.startswith(other))
    # memory does not grow with tasks: one importance and one anchor per parameter
    strategy.train(bm.train_stream[1])
    assert {n: o.shape for n, o in plugin.importances.items()} == sizes and set(plugin.anchors) == set(sizes)


def test_regularisation_changes_training():
    bm, plain, _ = tiny_strategy()
    plain.train(bm.train_stream[0])
    plain.train(bm.train_stream[1])
    bm, regularised, _ = tiny_strategy()
    regularised.plugins.insert(0, STRATEGIES.build("ewc", {"lam": 1e6}))
    regularised.train(bm.train_stream[0])
    anchor = {n: p.detach().clone() for n, p in regularised.model.named_parameters()}
    regularised.train(bm.train_stream[1])

    def drift(model):
        return sum(float((p.detach() - anchor[n]).pow(2).sum()) for n, p in model.named_parameters())

    assert drift(regularised.model) < drift(plain.model)


def test_importance_pass_is_not_a_training_step():
    from ccrbench.registry import LOSSES

    bm, strategy, _ = tiny_strategy()
    strategy._criterion = LOSSES.build("max_hinge", {"warmup_steps": 1000})
    plugin = STRATEGIES.build("ewc", {"lam": 1.0})
    strategy.plugins.insert(0, plugin)
    strategy.train(bm.train_stream[0])
    iterations = strategy.clock.train_exp_iterations
    assert int(strategy._criterion.steps) == iterations  # EWC's importance batches are not counted
    assert strategy._criterion.training and strategy.model.training
