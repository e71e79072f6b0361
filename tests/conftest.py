"""Shared test set-up."""
import matplotlib
import nbformat
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


@pytest.fixture
def write_lesson(tmp_path):
    """``write(name, title, *cells)``: a small lesson notebook in ``tmp_path`` (kernel ``python3``): a
    markdown title cell, then ``cells``, each ``("markdown" | "code", source)``. Returns its path."""
    def write(name, title, *cells):
        new = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
        nb = nbformat.v4.new_notebook(cells=[new["markdown"](title)] + [new[kind](source) for kind, source in cells])
        nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = tmp_path / name
        nbformat.write(nb, path)
        return path
    return write
