"""LoRA: which layers get adapters, frozen base weights, and the per-task merge against the
naive W + (alpha / rank) B A."""

import torch
from torch import nn

from ccrbench.registry import STRATEGIES
from ccrbench.strategies.lora import linear_layers
from tests.training.test_template import tiny_strategy


def test_adapts_every_linear_layer_but_those_inside_multihead_attention():
    model = nn.ModuleDict({"mlp": nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), "attn": nn.MultiheadAttention(4, 2), "conv": nn.Conv2d(1, 1, 1)})
    assert linear_layers(model) == ["mlp.0", "mlp.2"]  # attn.out_proj is a Linear the attention never calls


def test_trains_only_adapters_then_merges_them_into_the_plain_model():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("lora", {"rank": 2, "alpha": 6.0})
    strategy.plugins.insert(0, plugin)
    model = strategy.model
    names, params = set(model.state_dict()), list(strategy.optimizer.param_groups[0]["params"])
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    seen = {}
    real = plugin.after_training_exp

    def spy(strategy, **kwargs):  # the adapters as trained, before the merge
        seen["state"] = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
        seen["trained"] = [p for group in strategy.optimizer.param_groups for p in group["params"]]
        real(strategy, **kwargs)

    plugin.after_training_exp = spy
    strategy.train(bm.train_stream[0])
    state, targets = seen["state"], linear_layers(model)
    assert len(seen["trained"]) == 2 * len(targets)  # A and B of every adapted layer, nothing else
    assert set(model.state_dict()) == names and strategy.optimizer.param_groups[0]["params"] == params  # as built again
    assert all(p.requires_grad for p in model.parameters())
    after = model.state_dict()
    for name in targets:
        a, b = state[f"{name}.lora_A.task.weight"], state[f"{name}.lora_B.task.weight"]  # [r, in], [out, r]
        assert torch.equal(state[f"{name}.base_layer.weight"], before[f"{name}.weight"])  # frozen while training
        assert torch.allclose(after[f"{name}.weight"], before[f"{name}.weight"] + 6.0 / 2 * b @ a, atol=1e-6)
    frozen = [k for k in before if not any(k.startswith(f"{t}.") for t in targets) and before[k].is_floating_point()]
    assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)
