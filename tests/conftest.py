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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny job with ``--jobs 1`` run once per test run, shared by tests/test_reproduce.py
    and tests/test_jobs.py (and by the xdist workers): (job, wall seconds, its state file as the
    run left it). Tests that run stages again on it must leave its results byte for byte."""
    from tests.helpers import shared_tiny_job

    return shared_tiny_job(tmp_path_factory)
