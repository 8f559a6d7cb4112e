"""What the GPU path relies on, checked on the CPU: RNN modes in importance passes, mixed
precision, the data-wait meter and device-independent checkpoints."""

import time

import pytest
from torch.utils.tensorboard import SummaryWriter
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ccrbench import checkpoint
from ccrbench.benchmarks.shapes import shapes_benchmark
from ccrbench.build import build_learner
from ccrbench.config import apply_overrides, from_dict
from ccrbench.registry import STRATEGIES
from ccrbench.strategies.regularization import importance_mode
from ccrbench.training.throughput import DataWaitMeter
from tests.tiny import TINY
from tests.training.test_template import tiny_strategy


def refuse_eval_mode_backward(module, args):
    """What cuDNN does: no RNN backward in eval mode (raised at the forward, where it can be seen on a CPU)."""
    if torch.is_grad_enabled() and not module.training:
        raise RuntimeError("cudnn RNN backward can only be called in training mode")


@pytest.mark.parametrize("name", ["ewc", "mas"])
def test_importance_pass_runs_rnn_modules_in_train_mode(name):
    bm, strategy, _ = tiny_strategy()
    gru = strategy.model.text_encoder.gru
    gru.register_forward_pre_hook(refuse_eval_mode_backward)
    plugin = STRATEGIES.build(name, {"lam": 1.0, "importance_batches": 1})
    strategy.plugins.insert(0, plugin)
    strategy.train(bm.train_stream[0])  # the importance pass runs after the experience
    assert float(plugin.importances["text_encoder.gru.weight_ih_l0"].sum()) > 0


def test_importance_mode_is_eval_mode_except_deterministic_rnns():
    rnn = nn.GRU(4, 3, num_layers=2, dropout=0.5, batch_first=True)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model.train()
    rnn.train()
    x = torch.randn(2, 5, 4)
    with importance_mode(model, rnn):
        assert rnn.training and rnn.dropout == 0.0 and not model.training and not model[1].training
        assert torch.equal(rnn(x)[0], rnn(x)[0])  # no dropout: what eval mode would compute
        rnn.eval()
        expected = rnn(x)[0]
        rnn.train()
        assert torch.allclose(rnn(x)[0], expected)
    assert rnn.training and rnn.dropout == 0.5 and model.training and model[1].training  # restored


class LossRecorder(SupervisedPlugin):
    def __init__(self, losses):
        super().__init__()
        self.losses = losses

    def after_training_iteration(self, strategy, **kwargs):
        self.losses.append(float(strategy.loss))


def bf16_learner(tmp_path, *extra):
    config = from_dict(apply_overrides({}, [*TINY, "train.precision=bf16", "loss.learnable=true", *extra]))
    benchmark = shapes_benchmark(**config.benchmark.options)
    return benchmark, build_learner(config, benchmark, SummaryWriter(tmp_path), directions=("i2t", "t2i"), progress=False)


def test_bf16_autocast_training_runs_and_evaluates_in_fp32(tmp_path):
    benchmark, learner = bf16_learner(tmp_path)
    strategy = learner.strategy
    dtypes = []
    strategy.model.image_proj.register_forward_hook(lambda m, i, out: dtypes.append((strategy.is_training, out.dtype)))
    losses = []
    strategy.plugins.append(LossRecorder(losses))
    before = float(strategy.model.logit_scale)
    for index in range(2):
        strategy.train(benchmark.train_stream[index])
        strategy.eval([benchmark.test_stream[t] for t in range(index + 1)])
    assert {d for training, d in dtypes if training} == {torch.bfloat16}  # the training forward is autocast
    assert {d for training, d in dtypes if not training} == {torch.float32}  # evaluation is not
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert float(strategy.model.logit_scale) != before  # the model's temperature trained
    final = learner.metrics.stages[-1]["metrics"]["reindex"]["all"]
    assert 0 <= final["i2t_r1"] <= 100 and 0 <= final["t2i_r5"] <= 100


def test_only_fp16_uses_a_gradient_scaler(tmp_path):
    _, bf16 = bf16_learner(tmp_path / "a")
    _, fp16 = bf16_learner(tmp_path / "b", "train.precision=fp16")
    assert not bf16.strategy.scaler.is_enabled() and fp16.strategy.scaler.is_enabled()
    assert fp16.strategy.autocast_dtype == torch.float16


def test_fp16_loss_scale_is_in_the_checkpoint(tmp_path):
    _, saved = bf16_learner(tmp_path / "a", "train.precision=fp16")
    saved.strategy.scaler.scale(torch.ones(()))  # the scale is created at the first step
    saved.strategy.scaler.update(new_scale=1024.0)  # as after some overflowing steps
    _, resumed = bf16_learner(tmp_path / "b", "train.precision=fp16")
    checkpoint.load_learner_state(resumed, checkpoint.learner_state(saved))
    assert resumed.strategy.scaler.get_scale() == 1024.0 != bf16_learner(tmp_path / "c", "train.precision=fp16")[1].strategy.scaler.get_scale()


def test_data_wait_meter_sees_a_slow_input_pipeline():
    bm, strategy, _ = tiny_strategy()
    meter = DataWaitMeter(enabled=False)
    strategy.plugins.append(meter)
    strategy.train(bm.train_stream[0])
    collate = strategy.collate
    strategy.collate = lambda items: (time.sleep(0.2), collate(items))[1]
    strategy.train(bm.train_stream[1])
    fast, slow = meter.history
    assert (fast.experience, slow.experience) == (0, 1) and fast.steps == slow.steps > 0
    assert slow.waiting >= 0.2 * slow.steps and slow.fraction > fast.fraction and 0 <= fast.fraction <= slow.fraction <= 1
    assert "waiting for data" in str(slow)


def test_checkpoints_load_on_the_cpu_whatever_device_wrote_them(tmp_path, monkeypatch):
    seen = {}
    real_load = torch.load

    def load(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    bm, strategy, metrics = tiny_strategy()
    learner = type("Learner", (), {"strategy": strategy, "plugin": STRATEGIES.build("finetune", {}), "metrics": metrics})()
    checkpoint.save_checkpoint(tmp_path, experiences_done=1, learners=[learner])
    assert checkpoint.load_checkpoint(tmp_path, [learner]) == 1
    assert seen["map_location"] == "cpu"
