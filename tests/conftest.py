"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch

#: The longest test files, longest first (``--durations``, docs/benchmarks.md). They run first:
#: ``make test`` hands whole files to the xdist workers in collection order
#: (``--dist loadfile --no-loadscope-reorder``), so a long file started last cannot keep one
#: worker busy while the other has nothing left to do. xdist's own order (most tests first) put
#: these few-test, whole-job files last.
LONGEST_FIRST = (
    "tests/test_jobs.py",
    "tests/test_reproduce.py",
    "tests/test_experiment5.py",
    "tests/test_experiment4.py",
    "tests/robustness/test_robust_signals.py",
    "tests/robustness/test_robust_crash.py",
    "tests/test_models.py",
    "tests/test_training.py",
    "tests/robustness/test_robust_data.py",
    "tests/test_signals.py",
)


def pytest_collection_modifyitems(config, items):
    """The longest files first (:data:`LONGEST_FIRST`; a stable sort: the order within a file and
    of the other files stays). Tests marked ``gpu`` need a CUDA GPU that torch can use: skipped
    where there is none."""
    missing = [path for path in LONGEST_FIRST if not (config.rootpath / path).is_file()]
    if missing:  # a renamed file would silently go back to the end of the queue
        raise pytest.UsageError(f"tests/conftest.py: LONGEST_FIRST names no file {missing}")
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
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
