"""Shared test set-up."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # headless: explorers and drawing helpers draw into memory


@pytest.fixture(autouse=True)
def one_thread():
    """Every tensor in the tests is small: one thread is faster than two that wait for each
    other on a busy 2-core machine, and gives the same results."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
