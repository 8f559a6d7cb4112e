"""Where pretrained weights come from: downloaded on demand, or, offline, only from the caches.

Online (the default), torchvision weights names download into the torch hub cache
(TORCH_HOME) and Hugging Face model names into the Hugging Face cache (HF_HOME), as
torchvision and transformers do. Offline, nothing is downloaded and a missing file is
an error naming the file and the cache. Offline is the standard Hugging Face switch
`HF_HUB_OFFLINE=1` or ccrbench's own `CCRBENCH_OFFLINE=1` (which covers torchvision too).
"""

from __future__ import annotations

import os

OFFLINE_VARIABLES = ("CCRBENCH_OFFLINE", "HF_HUB_OFFLINE")


def offline() -> bool:
    """True when an offline switch (`CCRBENCH_OFFLINE` or `HF_HUB_OFFLINE`) is set to a true value."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


def hf_cache_dir() -> str:
    """The Hugging Face hub cache that `from_pretrained` reads and fills, from the environment now
    (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), as huggingface_hub resolves it."""
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return os.path.expanduser(os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub"))
