"""Executors only decide where a task runs: same results everywhere, errors come back, bad addresses are user errors."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.errors import UserError
from sim.executors import Dask, InProcess, ProcessPool, make_executor


def square(task):
    key, x = task
    return key, x * x, os.getpid()


def terminates_by_default(task):
    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def die_on_two(task):
    if task == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the system's out-of-memory killer does
    time.sleep(0.2)
    return task


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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_exit_when_the_process_that_started_them_is_killed(tmp_path):
    """A sweep killed outright (kill -9) cannot stop its pool: its workers must notice and exit, not wait for ever."""
    script = tmp_path / "pool.py"
    script.write_text(
        "import multiprocessing, time\n"
        "from sim.executors import ProcessPool\n"
        "pool = ProcessPool(2)\n"
        "assert sorted(pool.map_unordered(abs, [-1, -2])) == [1, 2]\n"
        "print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert workers
    proc.kill()
    proc.wait()

    def running(pid: int) -> bool:  # gone, or a zombie waiting to be reaped, is not running
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    deadline = time.monotonic() + 10
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(running, workers))


def test_pool_workers_end_at_sigterm_whatever_their_parent_does():
    """The command line turns SIGTERM into an interruption (sim.cli); a forked pool worker must not inherit that,
    or a pool that stops its workers with SIGTERM (when one of them dies) would wait for them for ever."""
    from sim.cli import _terminated

    previous = signal.signal(signal.SIGTERM, _terminated)
    pool = ProcessPool(2)
    try:
        assert all(pool.map_unordered(terminates_by_default, range(4)))
    finally:
        pool.close()
        signal.signal(signal.SIGTERM, previous)


def test_a_worker_killed_mid_sweep_is_one_message_and_no_hang():
    """A worker killed outright (out of memory) breaks the pool: the caller gets one message saying what is kept
    and how to go on, at once (the other workers end at the pool's SIGTERM, whatever the command line's handler)."""
    from sim.cli import _terminated

    previous = signal.signal(signal.SIGTERM, _terminated)
    pool = ProcessPool(2)
    started = time.monotonic()
    try:
        with pytest.raises(UserError, match=r"a worker process ended abruptly .* run the same command again \(a sweep goes on"):
            list(pool.map_unordered(die_on_two, range(8)))
    finally:
        pool.close()
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - started < 30


def test_ctrl_c_stops_a_local_cluster_sweep_in_one_line(tmp_path):
    """Ctrl-C in a terminal reaches every process of the command, a local Dask cluster's workers too: the command
    stops them and says so in one line, with no traceback from each worker and exit code 130."""
    out = tmp_path / "out"
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "sim", "sweep", str(root / "scenarios" / "frame_sweep.toml"), "--local-cluster",
           "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                            start_new_session=True,  # (its own process group, as a command in a terminal)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list((out / "runs").glob("*.yearly.csv")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: to the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["interrupted; nothing more was written"], err
