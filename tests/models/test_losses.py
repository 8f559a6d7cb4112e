import math

import pytest
import torch
import torch.nn.functional as F

from ccrbench.models.losses import InfoNCELoss, barlow_twins_loss, infonce_loss, max_hinge_loss, siglip_loss, sum_hinge_loss
from ccrbench.options import check_options
from ccrbench.registry import LOSSES


def naive_hinge(im, tx, ids, margin, reduce):
    total = 0.0
    for i in range(len(ids)):
        pos = float(im[i] @ tx[i])
        cap_costs = [max(0.0, margin + float(im[i] @ tx[j]) - pos) for j in range(len(ids)) if ids[j] != ids[i]]
        img_costs = [max(0.0, margin + float(im[j] @ tx[i]) - pos) for j in range(len(ids)) if ids[j] != ids[i]]
        total += reduce(cap_costs or [0.0]) + reduce(img_costs or [0.0])
    return total / len(ids)


def naive_infonce(im, tx, ids, t):
    total = 0.0
    for i in range(len(ids)):
        keep = [j for j in range(len(ids)) if j == i or ids[j] != ids[i]]
        row = torch.tensor([float(im[i] @ tx[j]) / t for j in keep])
        col = torch.tensor([float(im[j] @ tx[i]) / t for j in keep])
        target = keep.index(i)
        total += 0.5 * (-(row.log_softmax(0)[target]) - col.log_softmax(0)[target])
    return float(total) / len(ids)


def naive_barlow(im, tx, lam, eps=1e-5):
    B, D = im.shape

    def standardise(z, d):
        col = [float(z[b, d]) for b in range(B)]
        mean = sum(col) / B
        var = sum((v - mean) ** 2 for v in col) / B
        return [(v - mean) / (var + eps) ** 0.5 for v in col]

    zi = [standardise(im, d) for d in range(D)]
    zt = [standardise(tx, d) for d in range(D)]
    total = 0.0
    for d in range(D):
        for e in range(D):
            c = sum(zi[d][b] * zt[e][b] for b in range(B)) / B
            total += (1 - c) ** 2 if d == e else lam * c**2
    return total


def batch(seed, ids):
    g = torch.Generator().manual_seed(seed)
    im = F.normalize(torch.randn(len(ids), 8, generator=g), dim=1)
    tx = F.normalize(torch.randn(len(ids), 8, generator=g), dim=1)
    return im, tx, torch.tensor(ids)


IDS = [[0, 1, 2, 3, 4, 5], [0, 1, 1, 2, 3, 3, 3]]  # second: several captions of one image


@pytest.mark.parametrize("ids", IDS)
def test_hinge_losses_match_naive(ids):
    im, tx, t = batch(0, ids)
    assert float(max_hinge_loss(im, tx, t, margin=0.2)) == pytest.approx(naive_hinge(im, tx, ids, 0.2, max), abs=1e-5)
    assert float(sum_hinge_loss(im, tx, t, margin=0.2)) == pytest.approx(naive_hinge(im, tx, ids, 0.2, sum), abs=1e-5)


@pytest.mark.parametrize("ids", IDS)
def test_infonce_matches_naive(ids):
    im, tx, t = batch(1, ids)
    assert float(infonce_loss(im, tx, t, temperature=0.07)) == pytest.approx(naive_infonce(im, tx, ids, 0.07), abs=1e-4)


@pytest.mark.parametrize("ids", IDS)
def test_barlow_twins_matches_naive(ids):
    im, tx, t = batch(3, ids)
    assert float(barlow_twins_loss(im, tx, t, lambda_offdiag=5e-3)) == pytest.approx(naive_barlow(im, tx, 5e-3), rel=1e-4)
    assert float(barlow_twins_loss(im, tx, t, lambda_offdiag=0.5)) == pytest.approx(naive_barlow(im, tx, 0.5), rel=1e-4)


def test_barlow_twins_counts_each_caption_of_an_image_as_a_sample():
    im, tx, _ = batch(4, [0, 1, 2, 3])
    im = im[[0, 0, 0, 1, 2, 3]]  # image 0 has three captions in the batch: its row repeats
    tx = torch.cat([tx, tx[:2] + 0.1])
    repeated = barlow_twins_loss(im, tx, torch.tensor([0, 0, 0, 1, 2, 3]))
    assert float(repeated) == pytest.approx(float(barlow_twins_loss(im, tx, torch.arange(6))))  # no negatives to mask
    assert float(repeated) == pytest.approx(naive_barlow(im, tx, 5e-3), rel=1e-4)


def test_barlow_twins_is_zero_for_perfectly_correlated_decorrelated_features():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # standardised, uncorrelated dimensions
    assert float(barlow_twins_loss(z, z, torch.arange(4), eps=0.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(barlow_twins_loss(z, -z, torch.arange(4), eps=0.0)) == pytest.approx(8.0)  # C = -I: (1 - (-1))^2 per dim


def test_captions_of_the_same_image_are_not_negatives():
    im, tx, _ = batch(2, [0, 1])
    im = torch.stack([im[0], im[0]])  # one image, two captions
    tx = torch.stack([tx[0], tx[0]])
    same = torch.tensor([7, 7])
    assert float(max_hinge_loss(im, tx, same)) == 0.0
    assert float(infonce_loss(im, tx, same)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", [max_hinge_loss, sum_hinge_loss, infonce_loss, barlow_twins_loss, siglip_loss])
def test_a_few_steps_reduce_the_loss(loss):
    torch.manual_seed(0)
    im = torch.randn(16, 8, requires_grad=True)
    tx = torch.randn(16, 8, requires_grad=True)
    ids = torch.arange(16)
    opt = torch.optim.Adam([im, tx], lr=0.05)
    first = None
    for _ in range(30):
        opt.zero_grad()
        value = loss(F.normalize(im, dim=1), F.normalize(tx, dim=1), ids)
        first = float(value) if first is None else first
        value.backward()
        opt.step()
    assert float(value) < 0.5 * first


def test_infonce_temperature_is_fixed_or_learnable():
    im, tx, t = batch(5, [0, 1, 2, 3, 4])
    fixed = InfoNCELoss(temperature=0.1)
    assert list(fixed.parameters()) == [] and fixed.logit_parameters({}) == {}  # a buffer of the loss: never optimised
    assert float(fixed(im, tx, t)) == pytest.approx(float(infonce_loss(im, tx, t, temperature=0.1)), abs=1e-5)

    learnable = LOSSES.build("infonce", {"temperature": 0.1, "learnable": True})
    assert list(learnable.parameters()) == []  # the model holds it
    (name, start), = learnable.logit_parameters({}).items()
    assert name == "logit_scale" and start == pytest.approx(math.log(10.0))
    scale = torch.nn.Parameter(torch.tensor(start))
    opt = torch.optim.SGD([scale], lr=0.1)
    value = learnable(im, tx, t, logit_scale=scale)
    assert float(value) == pytest.approx(float(fixed(im, tx, t)), abs=1e-5)  # same start as the fixed one
    value.backward()
    assert scale.grad is not None and float(scale.grad) != 0.0
    opt.step()
    assert float(scale) != pytest.approx(math.log(10.0))  # the temperature moved
    with pytest.raises(ValueError, match="pass the model's logit_scale"):
        learnable(im, tx, t)
    assert float(learnable(im, tx, t, logit_scale=torch.tensor(9.0))) == pytest.approx(float(infonce_loss(im, tx, t, temperature=0.01)), abs=1e-4)  # capped at 100


def naive_siglip(im, tx, ids, scale, bias):
    total = 0.0
    for i in range(len(ids)):
        for j in range(len(ids)):
            z = 1.0 if ids[i] == ids[j] else -1.0
            total += math.log1p(math.exp(-z * (scale * float(im[i] @ tx[j]) + bias)))  # -log sigmoid
    return total / len(ids)


@pytest.mark.parametrize("ids", [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 2, 2]])
def test_siglip_matches_the_naive_reference(ids):
    im, tx, t = batch(6, ids)
    for scale, bias in ((10.0, -10.0), (3.0, 0.5)):
        assert float(siglip_loss(im, tx, t, scale=scale, bias=bias)) == pytest.approx(naive_siglip(im, tx, ids, scale, bias), rel=1e-5)


def test_siglip_registered_with_learnable_or_pretrained_scale_and_bias():
    im, tx, t = batch(4, [0, 1, 2, 3])
    fixed = LOSSES.build("siglip", {"temperature": 0.5, "bias": -2.0, "learnable": False})
    assert float(fixed(im, tx, t)) == pytest.approx(float(siglip_loss(im, tx, t, scale=2.0, bias=-2.0)), rel=1e-5)
    learnable = LOSSES.build("siglip", {})
    assert learnable.logit_parameters({}) == {"logit_scale": pytest.approx(math.log(10.0)), "logit_bias": -10.0}  # the paper's start
    pretrained = LOSSES.build("siglip", {"temperature": "pretrained", "bias": "pretrained"})
    assert pretrained.logit_parameters({"logit_scale": 1.5, "logit_bias": -3.0}) == {"logit_scale": 1.5, "logit_bias": -3.0}
    with pytest.raises(ValueError, match="needs a CLIP-family encoder"):
        pretrained.logit_parameters({})
    scale, bias = torch.tensor(1.5, requires_grad=True), torch.tensor(-3.0, requires_grad=True)
    value = pretrained(im, tx, t, logit_scale=scale, logit_bias=bias)
    assert float(value) == pytest.approx(float(siglip_loss(im, tx, t, scale=math.exp(1.5), bias=-3.0)), rel=1e-5)
    value.backward()
    assert float(scale.grad) != 0 and float(bias.grad) != 0


def test_barlow_twins_is_registered_with_its_weight():
    loss = LOSSES.build("barlow_twins", {"lambda_offdiag": 0.01})
    im, tx, t = batch(6, [0, 1, 2, 3])
    assert float(loss(im, tx, t)) == pytest.approx(float(barlow_twins_loss(im, tx, t, lambda_offdiag=0.01)))
    assert check_options(LOSSES.get("barlow_twins"), {}, where="loss") == {"lambda_offdiag": 5e-3}


def test_max_hinge_warms_up_with_the_sum_of_hinges():
    im, tx, t = batch(7, [0, 1, 2, 3, 4])
    plain, warm = LOSSES.build("max_hinge", {}), LOSSES.build("max_hinge", {"warmup_steps": 2})
    summed, hardest = float(sum_hinge_loss(im, tx, t)), float(max_hinge_loss(im, tx, t))
    assert summed > hardest
    assert float(plain(im, tx, t)) == pytest.approx(hardest)
    with torch.no_grad():  # evaluation batches report the loss without advancing the warm-up
        assert [float(warm(im, tx, t)) for _ in range(3)] == pytest.approx([summed] * 3)
    assert [float(warm(im, tx, t)) for _ in range(2)] == pytest.approx([summed] * 2)
    resumed = LOSSES.build("max_hinge", {"warmup_steps": 2})
    resumed.load_state_dict(warm.state_dict())  # the count travels with checkpoints
    assert float(warm(im, tx, t)) == float(resumed(im, tx, t)) == pytest.approx(hardest)
