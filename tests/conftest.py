"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA GPU that torch can use: skipped where there is none."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine two threads can make
    each step 10× slower (spinning OpenMP workers)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
