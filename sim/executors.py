"""Where runs execute: in this process, in a local process pool, or on a Dask cluster.

An executor only decides *where* a task runs; every task is a pure function call, so results are the same
on every executor and with any number of workers. ``map_unordered`` yields results as they finish, so
callers can stream them to disk.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from sim.errors import UserError


class InProcess:
    name = "inprocess"
    workers = 1

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[Any]:
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        pass


def _exit_with(parent: int) -> None:
    """In a pool's worker: exit if the process that started the pool is gone. Killed outright (kill -9) it has no
    chance to stop its pool, and the workers would wait for work for ever. A worker forked from the command line
    inherits its SIGTERM handler (see ``sim.cli``); the pool stops its workers with SIGTERM when one of them dies,
    so they get the default back, to end at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ProcessPool:
    """A local pool of worker processes (the default for sweeps)."""

    name = "processes"

    def __init__(self, workers: int):
        self.workers = workers
        # fork is fast on Linux; spawn elsewhere. Either gives the same results: tasks carry all they need.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                                            initializer=_exit_with, initargs=(os.getpid(),))

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[Any]:
        futures = [self._pool.submit(fn, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except cf.process.BrokenProcessPool:
            raise UserError("a worker process ended abruptly (killed, or out of memory); run the same command again "
                            "(a sweep goes on from the runs it finished)") from None
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _ctrl_c_ignored_by_children():
    """Start processes that ignore Ctrl-C. In a terminal Ctrl-C reaches every process of the command, a local
    cluster's workers too, and each would print its own traceback; the command itself stops them as it ends. A
    process inherits an ignored signal, so SIGINT is ignored while they start (a Ctrl-C in those seconds is lost)."""
    if threading.current_thread() is not threading.main_thread():  # (signals are set in the main thread only)
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _quiet_about_cancelled_tasks() -> None:
    """On a worker about to be stopped: a task cut short then is no news (Dask would log a warning for each)."""
    import logging

    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


class Dask:
    """Dask distributed: a running scheduler (``tcp://host:8786``) or a LocalCluster started here."""

    name = "dask"

    def __init__(self, address: str | None = None, local_workers: int = 2, processes: bool = True,
                 timeout: str = "10s"):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a declared dependency
            raise UserError("the Dask executor needs the 'distributed' package") from exc
        self._cluster = None
        try:
            if address:
                self._client = Client(address, timeout=timeout)
            else:
                with _ctrl_c_ignored_by_children():
                    self._cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=processes,
                                                 dashboard_address=":0")  # any free port: never clashes
                self._client = Client(self._cluster)
        except (OSError, TimeoutError, ValueError) as exc:  # (ValueError: not an address, e.g. no port)
            raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.workers = len(self._client.scheduler_info().get("workers", {})) or local_workers

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[Any]:
        from distributed import as_completed

        futures = [self._client.submit(fn, t, pure=False) for t in tasks]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._cluster is not None:  # this command's own workers: what they still run is cut short, as expected
            with contextlib.suppress(Exception):
                self._client.run(_quiet_about_cancelled_tasks)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int = 1, scheduler: str | None = None, local_cluster: bool = False):
    """Choose an executor from the command-line flags."""
    if scheduler and local_cluster:
        raise UserError("--scheduler and --local-cluster: give one (a running cluster's address, or a cluster "
                        "started here)")
    if scheduler or local_cluster:
        return Dask(scheduler, local_workers=max(workers, 1))
    if workers <= 1:
        return InProcess()
    return ProcessPool(workers)
