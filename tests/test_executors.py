"""Executors only decide where a task runs: same results everywhere, errors come back, bad addresses are user errors."""

import os
import time

import pytest

from sim.errors import UserError
from sim.executors import Dask, InProcess, ProcessPool, make_executor


def square(task):
    key, x = task
    return key, x * x, os.getpid()


def fail_on_three(task):
    if task == 3:
        raise ValueError("task 3 failed")
    return task


def test_every_executor_returns_every_result_once():
    tasks = [(k, k + 0.5) for k in range(12)]
    expected = {k: (k + 0.5) ** 2 for k in range(12)}
    pool = ProcessPool(2)
    try:
        got = list(pool.map_unordered(square, tasks))
    finally:
        pool.close()
    assert {k: v for k, v, _ in got} == expected and len(got) == 12
    assert all(pid != os.getpid() for _, _, pid in got)  # ran in worker processes
    got = list(InProcess().map_unordered(square, tasks))
    assert [k for k, _, _ in got] == list(range(12)) and {k: v for k, v, _ in got} == expected


def test_dask_local_cluster_runs_tasks():
    ex = Dask(local_workers=2, processes=False)
    try:
        assert ex.workers == 2
        got = list(ex.map_unordered(square, [(k, k) for k in range(6)]))
    finally:
        ex.close()
    assert sorted((k, v) for k, v, _ in got) == [(k, k * k) for k in range(6)]


@pytest.mark.parametrize("make", [InProcess, lambda: ProcessPool(2)])
def test_a_failing_task_raises_in_the_caller(make):
    ex = make()
    try:
        with pytest.raises(ValueError, match="task 3 failed"):
            list(ex.map_unordered(fail_on_three, range(6)))
    finally:
        ex.close()


def test_unreachable_scheduler_is_a_user_error():
    t0 = time.monotonic()
    with pytest.raises(UserError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        Dask("tcp://127.0.0.1:9", timeout="1s")
    assert time.monotonic() - t0 < 20


def test_make_executor_follows_the_flags():
    assert isinstance(make_executor(1), InProcess)
    pool = make_executor(2)
    try:
        assert isinstance(pool, ProcessPool) and pool.workers == 2
    finally:
        pool.close()
