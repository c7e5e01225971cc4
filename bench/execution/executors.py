"""Executors: where a run's units of work are computed. One interface, three engines.

- ``local``: in this process (``--workers 1``), or ``--workers N`` spawned worker processes,
  each with its share of the CPU threads and, on a machine with several GPUs, one of them.
- ``dask``: Dask distributed, on a running cluster (``--scheduler tcp://HOST:PORT``) or on a
  ``LocalCluster`` of ``--workers N`` processes it starts. Units that need a GPU ask for a
  ``GPU`` resource, so workers started with ``--resources GPU=1`` take them.
- ``slurm``: a Dask cluster of SLURM jobs through dask-jobqueue's ``SLURMCluster``.

``map`` yields ``(unit, result)`` as units finish, in any order; a unit that raised, or whose
worker died more than ``RETRIES`` times, yields a ``UnitFailure`` with the reason. The driver,
not the executor, writes the store, so resume and the report work the same on every engine.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from bench.errors import one_line
from bench.execution.worker import run_unit
from bench.execution.workspace import RunContext
from bench.logs import show_training_progress, shows_training_progress

__all__ = ["ExecutorSpec", "UnitFailure", "Executor", "make_executor", "slurm_cluster", "EXECUTORS", "RETRIES"]

EXECUTORS = ("local", "dask", "slurm")
RETRIES = 2  # a unit whose worker dies is retried at most this often, then stored as failed
CONNECT_TIMEOUT = 5  # seconds to wait for a Dask scheduler before giving up


@dataclass(frozen=True)
class ExecutorSpec:
    """Which engine and how big; validated on construction (bad input raises ValueError)."""

    name: str = "local"
    workers: int = 1
    threads: int | None = None  # per worker; default: this machine's cores / workers
    scheduler: str | None = None
    slurm_partition: str | None = None
    slurm_time: str = "04:00:00"
    slurm_memory: str = "16GB"
    gpus_per_job: int = 0
    jobs: int = 1
    slurm_scheduler_host: str | None = None

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise ValueError(f"executor {self.name!r} is unknown; expected one of: {', '.join(EXECUTORS)}")
        threads = 1 if self.threads is None else self.threads  # None: cores / workers
        for what, value in (("workers", self.workers), ("jobs", self.jobs), ("threads", threads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{what} must be a positive integer; got {value!r}")
        if self.gpus_per_job < 0:
            raise ValueError(f"--gpus-per-job must be 0 or more; got {self.gpus_per_job!r}")
        if self.scheduler is not None:
            if self.name != "dask":
                raise ValueError("--scheduler joins a Dask cluster; use it with --executor dask")
            if not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/:]+(:\d+)?", self.scheduler):
                raise ValueError(f"--scheduler {self.scheduler!r} is not an address; expected e.g. tcp://10.0.0.5:8786")
        if not re.fullmatch(r"\d+(-\d+)?(:\d{2}){0,2}", self.slurm_time):
            raise ValueError(
                f"--slurm-time {self.slurm_time!r} is not a SLURM time; expected e.g. 04:00:00 or 1-00:00:00"
            )

    @property
    def remote(self) -> bool:
        """True when workers may run on other machines (they need the data and a shared cache)."""
        return self.name == "slurm" or self.scheduler is not None

    def cpu_threads(self) -> int:
        return self.threads or max(1, len(os.sched_getaffinity(0)) // self.workers)


@dataclass(frozen=True)
class UnitFailure:
    """A unit that produced no result: the reason is stored on each of its cells."""

    reason: str


class Executor(ABC):
    """Computes units of work; a context manager that releases its workers on exit."""

    description = ""
    #: Whether units run side by side; in-process ones run one after another.
    parallel = True

    @abstractmethod
    def map(self, context: RunContext, units: Sequence[Any]) -> Iterator[tuple[Any, Any]]: ...

    def close(self) -> None:  # noqa: B027 - in-process executors hold nothing to release
        """Release workers (and a cluster this executor started)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcess(Executor):
    """``--workers 1``: every unit in this process, in order (the GPU default)."""

    description = "in this process"
    parallel = False

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def map(self, context, units):
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        for unit in units:
            try:
                yield unit, run_unit(context, unit)
            except Exception as err:
                yield unit, UnitFailure(one_line(err))


def _die_with(parent: int) -> None:
    """End this process when the driver ``parent`` dies, however it dies (kill -9 too): a worker
    left running would go on with a fit nobody collects, beside the rerun that resumes it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


def _worker_main(conn, env: dict[str, str], threads: int, progress: str | None = None, parent: int = 0) -> None:
    """A local worker: run the units the driver sends until it sends None (or goes away).

    ``progress``: the prefix of its fits' progress lines (None: silent, as the driver is);
    ``parent``: the driver's pid.
    """
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _die_with(parent)
    if progress is not None:  # a spawned process starts without the driver's logging
        show_training_progress(progress)
    import torch

    from bench.device import tune_cpu_allocator

    torch.set_num_threads(threads)
    tune_cpu_allocator()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            reply = (True, run_unit(*message))
        except Exception as err:
            reply = (False, one_line(err))
        try:
            conn.send(reply)
        except OSError:  # the driver is gone: nobody to tell
            return


class _Worker:
    def __init__(self, mp, index: int, threads: int, gpus: int) -> None:
        env = {"CUDA_VISIBLE_DEVICES": str(index % gpus)} if gpus > 1 else {}
        self.conn, child = mp.Pipe()
        progress = f"worker {index}: " if shows_training_progress() else None
        args = (child, env, threads, progress, os.getpid())
        self.process = mp.Process(target=_worker_main, args=args, daemon=True)
        self.process.start()
        child.close()
        self.index, self.unit = index, None
        self.delivered = False  # whether its unit reached it (False: it had died while idle)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)
        self.conn.close()


class LocalProcesses(Executor):
    """``--workers N``: N spawned processes; a worker that dies is replaced and its unit retried,
    whether it died running the unit or while idle (say, during the estimate's probe), found
    when its next unit cannot be sent."""

    def __init__(self, workers: int, threads: int, log: Callable[[str], None] = print) -> None:
        import torch

        self._mp = multiprocessing.get_context("spawn")  # fork is unsafe once torch has threads
        self._threads, self._log = threads, log
        self._gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        self._workers = [_Worker(self._mp, i, threads, self._gpus) for i in range(workers)]
        gpu_note = f", one of {self._gpus} GPUs each" if self._gpus > 1 else ""
        self.description = f"{workers} local worker processes, {threads} CPU thread(s) each{gpu_note}"

    def map(self, context, units):
        pending, attempts = deque(range(len(units))), [0] * len(units)
        while pending or any(w.unit is not None for w in self._workers):
            for worker in self._workers:
                if worker.unit is None and pending:
                    worker.unit = pending.popleft()
                    try:
                        worker.conn.send((context, units[worker.unit]))
                        worker.delivered = True
                    except OSError:  # BrokenPipeError: it died while idle; its sentinel is ready below
                        worker.delivered = False
            busy = [w for w in self._workers if w.unit is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                index, worker.unit = worker.unit, None
                try:
                    ok, value = worker.conn.recv()
                except (EOFError, OSError):  # the process died mid-unit (killed, out of memory)
                    reason = self._replace(worker, units[index])
                    attempts[index] += 1
                    if attempts[index] <= RETRIES:
                        self._log(f"  {reason}; retrying it (attempt {attempts[index] + 1} of {RETRIES + 1})")
                        pending.appendleft(index)
                    else:
                        yield units[index], UnitFailure(f"{reason} on {RETRIES + 1} attempts")
                    continue
                yield units[index], value if ok else UnitFailure(value)

    def _replace(self, worker: _Worker, unit: Any) -> str:
        worker.process.join(5)
        code = worker.process.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        doing = f"running {unit.label}" if worker.delivered else f"while idle, before it took {unit.label}"
        reason = f"worker {worker.index} (pid {worker.process.pid}) died ({how}) {doing}"
        worker.stop()
        self._workers[worker.index] = _Worker(self._mp, worker.index, self._threads, self._gpus)
        return reason

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers:
            worker.process.join(2)
            worker.stop()


def slurm_cluster(spec: ExecutorSpec):
    """dask-jobqueue's ``SLURMCluster`` for the spec (no job is submitted until it scales)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ImportError("--executor slurm needs dask-jobqueue: pip install 'denoise-bench[dist]'") from None
    gpus = spec.gpus_per_job
    options = {"dashboard_address": None} | ({"host": spec.slurm_scheduler_host} if spec.slurm_scheduler_host else {})
    return SLURMCluster(
        queue=spec.slurm_partition,
        walltime=spec.slurm_time,
        cores=spec.threads or 4,
        processes=1,
        memory=spec.slurm_memory,
        job_name="denoise-bench",
        job_extra_directives=[f"--gres=gpu:{gpus}"] if gpus else [],
        worker_extra_args=["--resources", f"GPU={gpus}"] if gpus else [],
        scheduler_options=options,
    )


class DaskExecutor(Executor):
    """Dask distributed: join ``spec.scheduler``, or start a LocalCluster or a SLURMCluster."""

    def __init__(self, spec: ExecutorSpec, *, gpu: bool = False) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("--executor dask needs Dask distributed: pip install 'denoise-bench[dist]'") from None
        # A task whose worker dies is rescheduled; after RETRIES more deaths it fails (KilledWorker).
        dask.config.set({"distributed.scheduler.allowed-failures": RETRIES})
        self.cluster, self._futures = None, []
        self.threads = spec.threads
        if spec.scheduler:
            self.client = _connect(Client, spec.scheduler)
            self.description = f"the Dask cluster at {spec.scheduler}"
        elif spec.name == "slurm":
            self.cluster = slurm_cluster(spec)
            self.cluster.scale(jobs=spec.jobs)
            self.client = Client(self.cluster)
            self.description = f"{spec.jobs} SLURM job(s) on partition {spec.slurm_partition or '(default)'}"
        else:
            self.threads = spec.cpu_threads()
            self.cluster = LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                resources={"GPU": 1} if gpu else None,
            )
            self.client = Client(self.cluster)
            self.description = f"a Dask LocalCluster of {spec.workers} workers, {self.threads} CPU thread(s) each"

    def map(self, context, units):
        from distributed import as_completed

        futures = {}
        for index, unit in enumerate(units):
            future = self.client.submit(
                run_unit, context, unit, self.threads, pure=False, resources={"GPU": 1} if unit.gpu else None
            )
            futures[future] = index
        self._futures = list(futures)
        for future in as_completed(futures):
            unit = units[futures[future]]
            try:
                yield unit, future.result()
            except Exception as err:  # raised by the unit, or KilledWorker after RETRIES deaths
                yield unit, UnitFailure(one_line(err))
            future.release()

    def close(self) -> None:
        if self._futures:
            self.client.cancel(self._futures)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _connect(client_class, address: str):
    try:
        return client_class(address, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError) as err:
        raise ValueError(
            f"no Dask scheduler answers at {address} within {CONNECT_TIMEOUT} s ({type(err).__name__}); "
            "start one with 'dask scheduler' and 'dask worker ADDRESS', or check the address"
        ) from None


def make_executor(spec: ExecutorSpec, *, gpu: bool = False, log: Callable[[str], None] = print) -> Executor:
    """The executor for ``spec``; ``gpu`` says whether the run's device is CUDA."""
    if spec.name == "local" and spec.workers == 1:
        return InProcess(spec.threads)
    if spec.name == "local":
        return LocalProcesses(spec.workers, spec.cpu_threads(), log)
    return DaskExecutor(spec, gpu=gpu)
