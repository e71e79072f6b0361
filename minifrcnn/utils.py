"""Device choice and seeding: the two things every lesson does first."""
import os
import random

import numpy as np
import torch


def get_device(prefer=None):
    """The device to compute on: a CUDA GPU when one is present, else the CPU.

    Args:
        prefer (str, optional): force a device ("cpu", "cuda", "cuda:1", "mps"). The
            environment variable ``MINIFRCNN_DEVICE`` does the same for a whole course run,
            e.g. ``MINIFRCNN_DEVICE=cpu make test`` on a machine with a GPU.

    Returns:
        torch.device
    """
    name = prefer or os.environ.get("MINIFRCNN_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but torch sees no CUDA GPU")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed=0):
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a run repeats exactly on CPU.

    On a GPU some kernels (e.g. the backward pass of RoI pooling) are still
    non-deterministic; results then agree to a tolerance, not bit for bit.

    Returns:
        torch.Generator: a fresh generator seeded with ``seed``, for code that takes one.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
