"""Keep the server's processes together: stop all of them on a signal, orphan none.

``bentoml serve`` is a process manager (circus's arbiter) whose workers run in sessions
of their own and hold the listening socket, so a worker that loses its arbiter keeps
the port, and a restart fails on it. Two guards close that:

* The launcher ``python -m serving`` (behind ``postloan serve`` and ``make serve`` too)
  becomes this supervisor once its checks pass: it runs ``bentoml serve`` as its child
  and turns SIGTERM, SIGINT and SIGHUP (systemd, supervisord, container runtimes, a
  terminal) into an orderly stop of every process below it, with SIGKILL for whatever
  still runs after :data:`STOP_GRACE` seconds, so the port is free within 10 s. On Linux
  it is also the tree's subreaper: a worker whose arbiter dies is re-parented to it, not
  to init, and is stopped with the rest.
* Every process of the tree asks to be sent SIGTERM when its parent dies
  (:func:`exit_with_parent`: Linux ``prctl(PR_SET_PDEATHSIG)``, elsewhere a thread
  watching the parent's pid): the arbiter when the supervisor is killed outright, and
  each worker (``serving.service`` calls it at import) when its arbiter is.

Standard library and psutil only: the launcher ``exec``s into ``python -m
serving.supervisor -- <command>``, so the long-lived supervisor does not keep the models
and libraries its checks loaded.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import psutil

STOP_GRACE = 8.0  # seconds from a stop signal to SIGKILL: the tree is gone within 10 s
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
BENTOML_WORKER = "_bentoml_impl.worker.service"  # the module a BentoML worker runs as
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library on Linux (loaded once, before any fork), else None."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False where there is no prctl."""
    libc = _libc()
    if libc is None:
        return False
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return True


def _watch_parent(parent: int, sig: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os.kill(os.getpid(), sig)


def exit_with_parent(sig: int = signal.SIGTERM, interval: float = 1.0) -> None:
    """Have this process sent `sig` when its parent process dies, however it dies.

    Linux delivers `sig` itself (``PR_SET_PDEATHSIG``, kept across ``exec``); elsewhere a
    daemon thread polls the parent's pid every `interval` seconds. If the parent is
    already gone by the time this runs, `sig` is sent at once.

    Args:
        sig: the signal to receive (SIGTERM: the process shuts down in its usual way).
        interval: seconds between checks where the kernel cannot do it.
    """
    parent = os.getppid()
    if not _prctl(_PR_SET_PDEATHSIG, sig):
        threading.Thread(target=_watch_parent, args=(parent, sig, interval), daemon=True,
                         name="postloan-parent-watch").start()
    if os.getppid() != parent:  # it died between the two calls
        os.kill(os.getpid(), sig)


def in_bentoml_worker() -> bool:
    """Whether this process is a BentoML service worker (started by ``bentoml serve``)."""
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    return main is not None and main.name == BENTOML_WORKER


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def stop_tree(proc: subprocess.Popen, grace: float = STOP_GRACE,
              family: Sequence[psutil.Process] | None = None) -> int:
    """Stop `proc` and every process below it, whichever session each runs in.

    SIGTERM to `proc` (BentoML's arbiter then stops its workers), then SIGKILL to
    whatever still runs `grace` seconds later. Workers run in sessions of their own, so
    a signal to `proc`'s process group would not reach them: they are found by
    parentage (psutil) before `proc` is signalled.

    Args:
        proc: the process started (e.g. ``bentoml serve``); may have exited already.
        grace: seconds allowed for the orderly stop of the whole tree.
        family: the processes to stop besides `proc` (default: its descendants now).

    Returns:
        `proc`'s exit code (negative: the signal that ended it).
    """
    deadline = time.monotonic() + grace
    if family is None:
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
    proc.send_signal(signal.SIGTERM)  # does nothing once proc has been waited for
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    alive = [p for p in family if not _gone(p)]
    _, alive = psutil.wait_procs(alive, timeout=max(0.0, deadline - time.monotonic()))
    for p in alive:
        try:
            p.kill()  # psutil checks the pid still names the same process
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return proc.returncode


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def _child_setup(parent: int) -> Callable[[], None]:
    """``preexec_fn`` of the server: SIGTERM to it when the supervisor dies (Linux)."""
    _libc()  # load before fork: the child only calls into it

    def setup() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) and os.getppid() != parent:
            os._exit(1)  # the supervisor is already gone

    return setup


def supervise(cmd: Sequence[str], grace: float = STOP_GRACE) -> int:
    """Run `cmd` (``bentoml serve ...``) as a child, and stop all of it on a signal.

    On SIGTERM, SIGINT or SIGHUP the whole tree is stopped (:func:`stop_tree`) and this
    process then ends by the same signal, as service managers and shells expect of a
    program they stopped. When the server exits by itself, whatever it left behind
    (a worker re-parented here) is stopped too.

    Args:
        cmd: the server's command line.
        grace: seconds from a stop signal to SIGKILL.

    Returns:
        The server's exit code when it exits by itself (128 + signal if one ended it).
    """
    for s in STOP_SIGNALS:
        signal.signal(s, _raise_stop)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    proc: subprocess.Popen | None = None
    signum = None
    try:
        proc = subprocess.Popen(cmd, start_new_session=True,
                                preexec_fn=_child_setup(os.getpid()))
        proc.wait()
    except _Stop as stop:
        signum = stop.signum
    for s in STOP_SIGNALS:  # a second Ctrl-C does not cut the stop short
        signal.signal(s, signal.SIG_IGN)
    family = psutil.Process().children(recursive=True)
    code = 1
    if proc is not None:
        code = stop_tree(proc, grace, [p for p in family if p.pid != proc.pid])
    else:  # the signal came while the server was being started
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=5)
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum  # not reached: the signal ends this process
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.supervisor [--grace S] -- <command ...>``."""
    p = argparse.ArgumentParser(prog="python -m serving.supervisor",
                                description="Run a server; stop its whole tree on a signal.")
    p.add_argument("--grace", type=float, default=STOP_GRACE,
                   help=f"seconds from a stop signal to SIGKILL (default {STOP_GRACE:g})")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the server's command line")
    args = p.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        p.error("no command given")
    return supervise(cmd, args.grace)


if __name__ == "__main__":
    sys.exit(main())
