"""Encoders (registry `encoder`), losses (registry `loss`) and the two-branch model."""

from ccrbench.models import clip, features, hf_text, image, losses, openclip, resnet, text, timm_image  # noqa: F401
from ccrbench.models.build import build_model
from ccrbench.models.losses import BarlowTwinsLoss, InfoNCELoss, MaxHingeLoss, SigLIPLoss, SumHingeLoss
from ccrbench.models.two_branch import TwoBranchModel

__all__ = ["BarlowTwinsLoss", "InfoNCELoss", "MaxHingeLoss", "SigLIPLoss", "SumHingeLoss", "TwoBranchModel", "build_model"]
