"""Runners: one function per partition, run here (local) or on a Dask cluster.

The **local** runner loops over the partitions (one partition in memory at a time:
memory is bounded by the largest partition, not the book); the **dask** runner
submits one task per partition to a ``distributed`` cluster. Both have the same
``map(fn, ks, *args)`` so every job (:mod:`postloan.scale.tasks`) runs on either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from postloan.errors import EngineError, PostloanError

ENGINES = ("local", "dask")


# --------------------------------------------------------------------------- runners
class LocalRunner:
    """Run partition tasks one after another in this process (bounded memory)."""

    name = "local"

    def __init__(self, progress: Callable[[int], None] | None = None) -> None:
        self.progress = progress

    def map(self, fn: Callable, ks: Sequence[int], *args: Any, **kwargs: Any) -> list:
        out = []
        for k in ks:
            try:
                out.append(fn(k, *args, **kwargs))
            except PostloanError:
                raise
            except Exception as e:
                e.add_note(f"(while processing partition {k})")
                raise
            if self.progress:
                self.progress(1)
        return out


class DaskRunner:
    """Run partition tasks on a ``distributed`` cluster, one task per partition.

    Dask retries a task whose worker died (up to ``distributed.scheduler.allowed-failures``
    times); beyond that the run fails with :class:`EngineError` naming the partition.
    """

    name = "dask"

    def __init__(self, client: Any, progress: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.progress = progress

    def map(self, fn: Callable, ks: Sequence[int], *args: Any, **kwargs: Any) -> list:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        stamp = f"{getattr(fn, '__name__', 'task')}-{time.time_ns()}"
        futures = [self.client.submit(fn, k, *args, key=f"{stamp}-partition-{k:05d}",
                                      pure=False, **kwargs) for k in ks]
        by_key = {f.key: k for f, k in zip(futures, ks, strict=True)}
        results: dict[int, Any] = {}
        try:
            for fut in as_completed(futures):
                k = by_key[fut.key]
                try:
                    results[k] = fut.result()
                except KilledWorker as e:
                    raise EngineError(
                        f"partition {k} failed: its worker died while running it, more often "
                        "than Dask retries (distributed.scheduler.allowed-failures); nothing "
                        f"was written. Check worker memory and logs. ({e})") from None
                except PostloanError:
                    raise
                except (OSError, TimeoutError) as e:
                    raise EngineError(f"partition {k} failed: lost contact with the Dask "
                                      f"cluster ({type(e).__name__}: {e}); nothing was "
                                      "written") from e
                except Exception as e:
                    e.add_note(f"(while processing partition {k} on Dask)")
                    raise
                if self.progress:
                    self.progress(1)
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [results[k] for k in ks]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = 1, memory_limit: str | None = "auto",
                connect_timeout: str = "10s") -> Iterator[Any]:
    """A ``distributed.Client``: connected to `scheduler`, else on a fresh LocalCluster.

    The LocalCluster is sized to the machine (one single-threaded worker process per
    core, memory split evenly) and closed on exit. Dask's own logs are kept to errors.

    Raises:
        EngineError: dask is not installed, or the scheduler address cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - dask is a dependency
        raise EngineError("the dask engine needs dask[distributed]: pip install "
                          "'postloan[scale]'") from e
    for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                 "distributed.worker", "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as e:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}. Is "
                              "`dask scheduler` running there and the port open?") from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = n_workers or os.cpu_count() or 1
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in each worker, which also switches off
    # glibc's dynamic mmap threshold: every large pandas allocation then maps and unmaps
    # fresh pages, and a partition task ran about 1.5-2x slower than in the parent
    # process (measured). Keep only the one-thread-per-worker BLAS/OpenMP/numba settings
    # (numba drives the TreeSHAP threads of postloan.models.treeshap).
    threads = str(threads_per_worker)
    spawn_env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                 "OPENBLAS_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, memory_limit=memory_limit)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
