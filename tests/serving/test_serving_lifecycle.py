"""Stopping the service: a signal stops every process of it, and no worker outlives its server.

Real servers on free loopback ports, serving the session's champions (conftest
``trained``), started the ways an operator starts them (``python -m serving``,
``postloan serve``, ``bentoml serve``). BentoML runs each worker in a session of its
own holding the listening socket, so "stopped" here means: no process of the tree is
left (zombies waiting to be reaped count as gone) and the port can be listened on
again, within the 10 s a service manager allows before it gives up.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `serving` is a folder of the repo, not an installed package
    sys.path.insert(0, str(ROOT))

from serving.process import HOST, ServiceProcess, child_env, free_port, wait_until_ready  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "lifecycle-token-0123456789abcdef"
STOP_WITHIN = 10.0  # seconds: what systemd & co. wait before escalating
WORKER = "_bentoml_impl.worker.service"


@pytest.fixture(scope="module")
def env(trained) -> dict[str, str]:
    return {"POSTLOAN_MODEL_DIR": str(trained["root"] / "models"),
            "POSTLOAN_API_TOKENS": TOKEN}


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cmd(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return f"pid {p.pid}"


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _survivors(procs: list[psutil.Process], deadline: float) -> list[str]:
    """The processes of `procs` still running at `deadline` (monotonic), or [] earlier."""
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return [f"{p.pid}: {_cmd(p)}" for p in alive]
        time.sleep(0.1)


def _can_listen(port: int) -> bool:
    """Whether a new server could listen on `port` (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            s.listen()
        except OSError:
            return False
    return True


def _serving_tree(pid: int, port: int) -> list[psutil.Process]:
    """The tree under `pid`, checked to hold a worker and to keep `port` taken."""
    tree = _tree(pid)
    workers = [p for p in tree if WORKER in _cmd(p)]
    assert workers, [_cmd(p) for p in tree]
    assert not _can_listen(port)  # the check below means something
    return tree


@contextlib.contextmanager
def _launched(cmd: list[str], env: dict[str, str], log: Path):
    """Start `cmd --port <free port>` and wait until it serves.

    Yields (the process started, its port, every process of its tree once ready);
    whatever of them still runs afterwards is killed, so a failing test leaves no server.
    """
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=child_env(env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree = [psutil.Process(proc.pid)]
    try:
        wait_until_ready(proc, f"http://{HOST}:{port}/readyz", log, timeout=120)
        tree = _serving_tree(proc.pid, port)
        yield proc, port, tree
    finally:
        _kill(tree)
        proc.wait(timeout=30)


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        if _running(p):
            p.kill()


@pytest.mark.parametrize("launcher,sig", [
    ("python -m serving", signal.SIGTERM),
    ("postloan serve", signal.SIGINT),
], ids=["SIGTERM to python -m serving", "SIGINT to postloan serve"])
def test_a_stop_signal_stops_the_whole_tree_and_frees_the_port(env, tmp_path, launcher,
                                                              sig):
    cmd = ([sys.executable, "-m", "serving"] if launcher == "python -m serving"
           else [str(Path(sys.executable).with_name("postloan")), "serve"])
    log = tmp_path / "serve.log"
    with _launched(cmd, env, log) as (proc, port, tree):
        assert len(tree) >= 3, [_cmd(p) for p in tree]  # launcher, arbiter, worker
        deadline = time.monotonic() + STOP_WITHIN
        proc.send_signal(sig)  # to the process started, as a service manager does
        assert proc.wait(timeout=STOP_WITHIN) == -sig  # it ends by the signal it was sent
        assert _survivors(tree, deadline) == []
        assert _can_listen(port)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


def test_killing_the_bentoml_server_outright_stops_its_worker(env, tmp_path):
    with ServiceProcess(env, log=tmp_path / "serve.log") as server:
        server.wait_ready(timeout=120)
        tree = _serving_tree(server.pid, server.port)
        try:
            deadline = time.monotonic() + STOP_WITHIN
            server.proc.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
            assert server.proc.wait(timeout=STOP_WITHIN) == -signal.SIGKILL
            assert _survivors(tree, deadline) == []
            assert _can_listen(server.port)
        finally:
            _kill(tree)


def test_killing_the_launcher_outright_stops_the_server_and_its_worker(env, tmp_path):
    cmd = [sys.executable, "-m", "serving"]
    with _launched(cmd, env, tmp_path / "serve.log") as (proc, port, tree):
        deadline = time.monotonic() + STOP_WITHIN
        proc.send_signal(signal.SIGKILL)  # the supervisor cannot stop anything itself
        assert proc.wait(timeout=STOP_WITHIN) == -signal.SIGKILL
        assert _survivors(tree, deadline) == []
        assert _can_listen(port)
