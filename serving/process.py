"""Run the service in the background: ``bentoml serve`` as a subprocess on a free port.

For notebooks, tests and benchmarks that need a real server on this machine::

    from serving.process import ServiceProcess

    with ServiceProcess({"POSTLOAN_MODEL_DIR": "models", "POSTLOAN_API_TOKENS": token}) as s:
        s.wait_ready()
        httpx.post(f"{s.url}/score", json=body, headers={"Authorization": f"Bearer {token}"})

The server runs ``bentoml serve serving.service:PostloanService`` from the repository
root in a new session (its own process group; stopping it stops its workers too, which
BentoML runs in sessions of their own), with its stdout and stderr in one log file. Its environment is this process's minus the
variables named by ``drop`` (by default every ``POSTLOAN_*``, so the caller's own
settings never leak in), plus the overrides given. Nothing here imports the service
itself: starting a server does not load models or set OMP variables in the caller.

Failures (the server exits, or is not ready in time) raise :class:`ServiceProcessError`
with the tail of the server log; scripts turn it into an exit message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import httpx

from postloan.errors import PostloanError
from serving.supervisor import STOP_GRACE, exit_with_parent, stop_tree

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:PostloanService"
HOST = "127.0.0.1"
LOG_TAIL = 3000  # characters of the server log quoted in an error


class ServiceProcessError(PostloanError):
    """A background server exited or was not ready in time (the message ends with its log)."""


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def child_env(overrides: Mapping[str, str] | None = None,
              drop: Iterable[str] = ("POSTLOAN_",)) -> dict[str, str]:
    """This process's environment without the variables whose names start with `drop`,
    updated with `overrides`: the environment of a server or launcher subprocess.

    Args:
        overrides: variables to set in the child (e.g. ``POSTLOAN_MODEL_DIR``).
        drop: name prefixes of variables not passed on.

    Returns:
        A new dict for ``subprocess``'s ``env``.
    """
    prefixes = tuple(drop)
    env = {k: v for k, v in os.environ.items() if not (prefixes and k.startswith(prefixes))}
    env.update(overrides or {})
    return env


def _tail(log: Path) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
    except OSError as e:
        return f"(no log: {e})"


def wait_until_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float,
                     interval: float = 0.25) -> float:
    """Seconds until ``GET url`` answers 200, polling every `interval` seconds.

    Args:
        proc: the server process; if it exits first, waiting stops at once.
        url: the readiness URL (``…/readyz`` for the service).
        log: the server's log file, quoted (its tail) in an error.
        timeout: seconds to wait at most.
        interval: seconds between attempts.

    Returns:
        Seconds from the call until the first 200.

    Raises:
        ServiceProcessError: the process exited, or no 200 within `timeout` seconds.
    """
    t0 = time.perf_counter()
    while True:
        code = proc.poll()
        if code is not None:
            raise ServiceProcessError(
                f"the server exited (code {code}) before {url} was ready:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        if time.perf_counter() - t0 >= timeout:
            raise ServiceProcessError(
                f"{url} was not ready after {timeout:g} s:\n{_tail(log)}")
        time.sleep(interval)


class ServiceProcess:
    """``bentoml serve serving.service:PostloanService`` in the background on loopback.

    The server runs from the repository root, so relative paths in `env` are read from
    there. Also a context manager: entering starts the server (without waiting), leaving
    stops it. ``proc``/``pid`` are there for fault injection (signals to the arbiter or its
    workers).

    Args:
        env: variables for the server on top of this process's environment (see
            :func:`child_env`), e.g. ``POSTLOAN_MODEL_DIR``, ``POSTLOAN_API_TOKENS``.
        port: the port (default: a free one, see :func:`free_port`).
        log: the file for the server's stdout and stderr (default: a new temporary file).
        workers: ``POSTLOAN_WORKERS`` of the service, if given.
        drop: name prefixes of this process's variables not passed on.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, port: int | None = None,
                 log: str | Path | None = None, workers: int | None = None,
                 drop: Iterable[str] = ("POSTLOAN_",)) -> None:
        overrides = dict(env or {})
        if workers is not None:
            overrides["POSTLOAN_WORKERS"] = str(workers)
        self.env = child_env(overrides, drop)
        self.port = port if port is not None else free_port()
        if log is None:
            fd, name = tempfile.mkstemp(prefix="postloan-serve-", suffix=".log")
            os.close(fd)
            log = name
        self.log = Path(log)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of ``bentoml serve`` (the arbiter; its group has the workers)."""
        if self.proc is None:
            raise ServiceProcessError("the server has not been started")
        return self.proc.pid

    @property
    def command(self) -> list[str]:
        """The command line: the ``bentoml`` beside this Python, on :attr:`port`."""
        bentoml = Path(sys.executable).with_name("bentoml")
        return [str(bentoml), "serve", SERVICE, "--port", str(self.port)]

    def start(self) -> ServiceProcess:
        """Start the server (returns at once; see :meth:`wait_ready`)."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServiceProcessError(f"the server already runs (pid {self.proc.pid})")
        with self.log.open("w") as out:  # the child keeps its own handle
            # exit_with_parent: a server started for a test or a benchmark goes down with
            # the process that started it, even one killed without calling stop().
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=exit_with_parent)
        return self

    def wait_ready(self, timeout: float = 120, interval: float = 0.25) -> float:
        """Seconds until ``/readyz`` answers 200.

        Raises:
            ServiceProcessError: not started, exited, or not ready within `timeout` s.
        """
        if self.proc is None:
            raise ServiceProcessError("the server has not been started")
        return wait_until_ready(self.proc, f"{self.url}/readyz", self.log, timeout, interval)

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL after `timeout` s)."""
        if self.proc is not None:
            stop_tree(self.proc, timeout)

    def log_text(self) -> str:
        """Everything the server has written so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
