"""The loss contract, checked for every registered loss: a new loss is covered by registering
it and saying in NEGATIVES whether it uses in-batch negatives.

A loss takes L2-normalised image_emb [B, D], text_emb [B, D] and image_ids [B] and returns a
scalar; pairs that share an image id are never negatives of each other."""

import pytest
import torch
import torch.nn.functional as F

import ccrbench  # noqa: F401 - fills the registries
from ccrbench.registry import LOSSES
from tests.contract import assert_documented_keyword_keys

# Per loss: does it contrast positive pairs with in-batch negatives?
NEGATIVES: dict[str, bool] = {
    "max_hinge": True,
    "sum_hinge": True,
    "infonce": True,
    "siglip": True,
    "barlow_twins": False,
}
IDS = torch.tensor([5, 5, 6, 7, 8, 9])  # rows 0 and 1: two captions of one image
NAMES = LOSSES.names()


def uses_negatives(name):
    if name not in NEGATIVES:
        pytest.fail(f"loss {name!r} is not in NEGATIVES in {__file__}: say whether it uses in-batch negatives")
    return NEGATIVES[name]


def build(name):
    """The loss with its defaults, and the keyword inputs the model would pass (learnable logit
    parameters, created as the runner does: `logit_parameters` of the loss, held outside it)."""
    loss = LOSSES.build(name, {}).eval()
    held = loss.logit_parameters({}) if hasattr(loss, "logit_parameters") else {}
    return loss, {n: torch.tensor(float(v), requires_grad=True) for n, v in held.items()}


def embeddings(seed, *, d=16):
    """Random unit image and caption rows [B, d]."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(len(IDS), d, generator=g), dim=1), F.normalize(torch.randn(len(IDS), d, generator=g), dim=1)


def test_negatives_are_declared_for_registered_losses_only():
    assert sorted(set(NEGATIVES) - set(NAMES)) == [], "remove losses that are no longer registered"


@pytest.mark.parametrize("name", NAMES)
def test_keys_are_keyword_only_typed_and_documented(name):
    assert_documented_keyword_keys(LOSSES, name)


@pytest.mark.parametrize("name", NAMES)
def test_is_a_finite_scalar_whose_gradients_reach_both_branches(name):
    loss, held = build(name)
    image, text = embeddings(0)
    image[1] = image[0]  # as the template passes them: the image's row repeated for each caption
    image, text = image.requires_grad_(), text.requires_grad_()
    value = loss(image, text, IDS, **held)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    for grad in (image.grad, text.grad, *(p.grad for p in held.values())):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_captions_of_the_same_image_are_never_negatives(name):
    """Moving caption 1 towards image row 0 (rows 0 and 1 share an image id) changes only that
    pair's similarity: the loss must not rise, as it does when the rows are distinct images."""
    loss, held = build(name)
    image, text = embeddings(1)
    others = torch.linalg.qr(image[1:].T).Q  # [D, B-1]: an orthonormal basis of the other image rows
    towards = image[0] - others @ (others.T @ image[0])  # orthogonal to them: only s(0, 1) changes
    pushed = text.clone()
    pushed[1] = text[1] + 3 * towards / towards.norm()
    with torch.no_grad():
        as_ids = [float(loss(image, t, IDS, **held)) for t in (text, pushed)]
        distinct = [float(loss(image, t, torch.arange(len(IDS)), **held)) for t in (text, pushed)]
    if not uses_negatives(name):
        assert as_ids == distinct, "a loss without negatives does not use image_ids"
        return
    assert distinct[1] > distinct[0] + 1e-3  # as a negative, the closer pair costs more
    assert as_ids[1] <= as_ids[0] + 1e-6
