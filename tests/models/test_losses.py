import pytest
import torch
import torch.nn.functional as F

from ccrbench.models.losses import infonce_loss, max_hinge_loss, sum_hinge_loss


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


def test_captions_of_the_same_image_are_not_negatives():
    im, tx, _ = batch(2, [0, 1])
    im = torch.stack([im[0], im[0]])  # one image, two captions
    tx = torch.stack([tx[0], tx[0]])
    same = torch.tensor([7, 7])
    assert float(max_hinge_loss(im, tx, same)) == 0.0
    assert float(infonce_loss(im, tx, same)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", [max_hinge_loss, sum_hinge_loss, infonce_loss])
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
