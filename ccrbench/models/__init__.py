"""Encoders (registry `encoder`), losses (registry `loss`) and the two-branch model."""

from ccrbench.models import clip, features, hf_text, image, losses, resnet, openclip, text, timm_image  # noqa: F401
from ccrbench.models.two_branch import TwoBranchModel

__all__ = ["TwoBranchModel"]
