"""Encoders (registry `encoder`), losses (registry `loss`) and the two-branch model."""

from ccrbench.models import image, losses, text  # noqa: F401
from ccrbench.models.two_branch import TwoBranchModel

__all__ = ["TwoBranchModel"]
