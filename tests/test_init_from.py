"""model.init_from: a run (or a checkpoint file) as the start of another run, and its errors."""

import pytest
import torch

import ccrbench.training.template as template
from ccrbench.checkpoint import CHECKPOINT, init_from
from ccrbench.config import apply_overrides, from_dict
from ccrbench.registry import BENCHMARKS, ConfigError
from ccrbench.build import seed_everything
from ccrbench.models.build import model_from_config
from ccrbench.runner import run
from tests.tiny import TINY

ONE_TASK = [*TINY, "benchmark.tasks=[blocks]"]
CORPUS = ("a red square", "two blue triangles")


def config(*extra):
    return from_dict(apply_overrides({}, [*ONE_TASK, *extra]))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("first")
    run(config(), out, progress=False)
    return out


def model(*extra, corpus=CORPUS):
    seed_everything(1)
    return model_from_config(config(*extra).model, corpus)


def test_the_second_run_trains_from_the_first_runs_weights(first_run, tmp_path, monkeypatch):
    saved = torch.load(first_run / CHECKPOINT, weights_only=False)["learners"][0]["model"]
    starts, real_train = [], template.RetrievalTemplate.train

    def record_start(self, *args, **kwargs):
        starts.append({k: v.detach().clone() for k, v in self.model.state_dict().items() if isinstance(v, torch.Tensor)})
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(template.RetrievalTemplate, "train", record_start)
    results = run(config(f"model.init_from={first_run}", "seed=5"), tmp_path / "from_dir", progress=False)
    assert results["config"]["model"]["init_from"] == str(first_run)
    start = starts[0]
    assert torch.equal(start["image_proj.weight"], saved["image_proj.weight"])
    assert all(torch.equal(start[k], saved[k]) for k in start)
    fresh = model()
    assert not torch.equal(fresh.state_dict()["image_proj.weight"], saved["image_proj.weight"])  # not a coincidence of seeds


@pytest.mark.parametrize("form", ["checkpoint", "state_dict"])
def test_a_checkpoint_file_or_a_saved_state_dict_is_a_start(first_run, tmp_path, form):
    saved = torch.load(first_run / CHECKPOINT, weights_only=False)["learners"][0]["model"]
    path = first_run / CHECKPOINT
    if form == "state_dict":
        path = tmp_path / "model.pt"
        torch.save(saved, path)
    target = model_from_config(config().model, captions())
    init_from(target, path)
    assert all(torch.equal(v, saved[k]) for k, v in target.state_dict().items() if isinstance(v, torch.Tensor))


def captions():
    """The first run's training captions (its all_tasks vocabulary)."""
    return BENCHMARKS.build("shapes", config().benchmark.options).train_captions


def test_errors_name_the_key_and_the_path(first_run, tmp_path):
    with pytest.raises(ConfigError, match=f"model.init_from: {tmp_path / 'nowhere'} does not exist"):
        init_from(model(), tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=f"model.init_from: the run directory {tmp_path} has no checkpoint.pt"):
        init_from(model(), tmp_path)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="model.init_from: .*junk.pt is not a readable checkpoint"):
        init_from(model(), tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ConfigError, match="list.pt holds no model state dict"):
        init_from(model(), tmp_path / "list.pt")


def test_another_architecture_is_refused_naming_the_parameter(first_run):
    ours = captions()
    with pytest.raises(ConfigError, match=r"another architecture.*'image_proj.weight' has shape \[16, 32\] there but \[24, 32\] here"):
        init_from(model_from_config(config("model.embed_dim=24").model, ours), first_run)
    with pytest.raises(ConfigError, match=r"another architecture.*it has 'shared.1.weight', which this model lacks"):
        init_from(model_from_config(config().model, ours), _with_extra_key(first_run))
    with pytest.raises(ConfigError, match=r"'text_encoder.embed.weight' has shape .*vocabulary: seen_tasks"):
        init_from(model_from_config(config().model, CORPUS), first_run)  # a vocabulary of other captions


def _with_extra_key(run_dir):
    state = torch.load(run_dir / CHECKPOINT, weights_only=False)["learners"][0]["model"]
    state["shared.1.weight"] = torch.zeros(16, 16)
    path = run_dir / "extra.pt"
    torch.save(state, path)
    return path


def test_a_bad_start_stops_the_run_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(template.RetrievalTemplate, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ConfigError, match="model.init_from"):
        run(config(f"model.init_from={tmp_path / 'missing'}"), tmp_path / "out", progress=False)
