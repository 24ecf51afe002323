"""Sweeps: results in task order with one tick per task; bad option combinations are one line.
(Parallel runs on joblib processes and on a Dask cluster: tests/test_reproduce.py.)"""

import contextlib

import pytest

from minisense import sweep
from minisense.errors import MinisenseError


def difference(a, b):
    return a - b


def test_results_come_back_in_task_order_with_a_tick_per_task():
    ticks = []

    @contextlib.contextmanager
    def progress(iterable, label=""):
        def counting():
            for i in iterable:
                ticks.append((label, i))
                yield i
        yield counting()

    tasks = [dict(a=[3, 1, 2][i], b=i) for i in range(3)]
    assert sweep.run(difference, []) == []
    assert sweep.run(difference, tasks, progress=progress, label="x") == [3, 0, 0]
    assert ticks == [("x", 0), ("x", 1), ("x", 2)]


@pytest.mark.parametrize("options, words", [
    (dict(backend="spark"), "unknown backend 'spark'"),
    (dict(jobs=0), "jobs must be a whole number >= 1"),
    (dict(backend="dask"), "needs the scheduler's address"),
    (dict(scheduler="tcp://x:8786"), "only for --backend dask"),
])
def test_bad_options_are_rejected_before_any_work(options, words):
    with pytest.raises(MinisenseError, match=words):
        sweep.run(difference, [dict(a=1, b=1)], **options)
