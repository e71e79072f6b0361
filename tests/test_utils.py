"""Device choice and seeding."""
import random

import numpy as np
import pytest
import torch

from minifrcnn.utils import get_device, seed_everything


def test_device_defaults_to_gpu_when_present(monkeypatch):
    monkeypatch.delenv("MINIFRCNN_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("MINIFRCNN_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        get_device("cuda")


def test_seeding_repeats_every_source():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    generator = seed_everything(7)
    first, from_generator = draw(), torch.rand(2, generator=generator)
    generator = seed_everything(7)
    assert draw() == first
    assert torch.equal(torch.rand(2, generator=generator), from_generator)
