"""Wiring of the scale-out engines (``--engine local|dask``): which runner, which
partitioned book, progress bars. The library side is :mod:`postloan.scale`."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipelines.console import err_console, progress_bar
from postloan import scale
from postloan.errors import ConfigError


def check_engine(name: str) -> str:
    if name not in scale.ENGINES:
        raise ConfigError(f"--engine must be one of {list(scale.ENGINES)}, got {name!r}")
    return name


def uses_partitions(engine_name: str, data: Path, partitions: int | None) -> bool:
    """Whether a run goes through the partition engine (else the classic in-memory path).

    The dask engine always does; the local engine does when the book is partitioned or
    ``--partitions`` asks for it (streaming one partition at a time, bounded memory).
    """
    check_engine(engine_name)
    return engine_name == "dask" or partitions is not None or scale.is_partitioned(data)


@contextlib.contextmanager
def partitioned_book(data: Path, partitions: int | None) -> Iterator[Path]:
    """The partitioned book to run on: `data` itself, or a temporary partitioned copy.

    A plain book with ``--partitions N`` is split on the fly into a temporary folder next
    to it (removed afterwards); a plain book without it is an error naming the fix.
    """
    data = Path(data)
    if scale.is_partitioned(data):
        n = scale.book_manifest(data)["n_partitions"]
        if partitions is not None and partitions != n:
            err_console.print(f"note: {data} has {n} partitions; --partitions {partitions} "
                              "ignored")
        yield data
        return
    if partitions is None:
        scale.book_manifest(data)  # raises the clear "not a partitioned book" error
    tmp = Path(tempfile.mkdtemp(prefix=f".{data.name}.partitioned-", dir=data.parent))
    try:
        with err_console.status(f"partitioning {data} into {partitions} parts"):
            scale.partition_book(data, tmp / "book", partitions)
        yield tmp / "book"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def cluster(engine_name: str, scheduler: str | None) -> Iterator[object | None]:
    """A Dask client for the run (None for the local engine), closed at the end."""
    check_engine(engine_name)
    if engine_name == "local":
        if scheduler:
            raise ConfigError("--scheduler needs --engine dask")
        yield None
        return
    with err_console.status("starting a Dask LocalCluster" if not scheduler
                            else f"connecting to Dask at {scheduler}"):
        client_cm = scale.dask_client(scheduler)
        client = client_cm.__enter__()
    try:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        err_console.print(f"Dask: {n} workers ({scheduler or 'local cluster'})")
        yield client
    finally:
        client_cm.__exit__(None, None, None)


@contextlib.contextmanager
def bar(client: object | None, description: str, total: int
        ) -> Iterator[scale.LocalRunner | scale.DaskRunner]:
    """A runner on `client` (local when None) advancing a progress bar per partition."""
    with progress_bar(description, total) as advance:
        yield (scale.LocalRunner(progress=advance) if client is None
               else scale.DaskRunner(client, progress=advance))


@contextlib.contextmanager
def runner(engine_name: str, scheduler: str | None, description: str, total: int
           ) -> Iterator[scale.LocalRunner | scale.DaskRunner]:
    """A runner with a progress bar over `total` partitions (a Dask client if asked)."""
    with cluster(engine_name, scheduler) as client, bar(client, description, total) as r:
        yield r
