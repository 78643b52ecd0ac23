"""A throwaway PostgreSQL server for tests and benchmarks (no mocks of the database).

:class:`PostgresServer` runs Debian's ``initdb`` and ``pg_ctl`` (from
``/usr/lib/postgresql/*/bin``, or ``$POSTLOAN_PG_BIN``) into a fresh temporary folder,
listens on a unix socket in that folder and on a free 127.0.0.1 port, and creates a
login role with a password. It fails loudly when it cannot start: a test that needs a
database never silently skips. ``make test`` installs the ``postgresql`` package when
it is missing.

Authentication: the superuser ``postgres`` connects over the unix socket without a
password (``trust``: it is the test harness); every TCP connection needs a password
(``scram-sha-256``), so wrong-password paths are real.

As a pytest fixture (``tests/conftest.py``)::

    def test_something(pg_server):
        url = pg_server.create_database("bank")      # postgresql+psycopg://postloan@127.0.0.1:PORT/bank
        with pg_server.password_env():                # PGPASSWORD set for libpq
            ...

Outside pytest (benchmarks)::

    with PostgresServer() as pg:
        url = pg.create_database("bench")

initdb refuses to run as root: as root the server runs as the ``postgres`` system user
(``runuser``), and the temporary folder is handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROLE = "postloan"


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest installed major version)."""
    env = os.environ.get("POSTLOAN_PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise RuntimeError("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/"
                       "initdb): install them with `apt-get install -y postgresql` (make test "
                       "does this) or set POSTLOAN_PG_BIN")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server in a temporary folder; start with :meth:`start` or ``with``.

    Attributes:
        root: the temporary folder (data directory, socket, log).
        socket_dir: the folder of the unix socket (libpq's ``host``).
        port: the TCP port on 127.0.0.1 (also the socket's number).
        user: the login role tests use (``postloan``), owner of created databases.
        password: its password (random per server).
        superuser: ``postgres``, trusted over the unix socket only.
    """

    superuser = "postgres"

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else find_bin_dir()
        self.root: Path | None = None
        self.port = free_port()
        self.user = ROLE
        self.password = secrets.token_urlsafe(12)
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self._watchdog: subprocess.Popen | None = None

    # ------------------------------------------------------------------ paths, URLs
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def admin_url(self) -> str:
        """Superuser URL over the unix socket (no password: trusted locally)."""
        return (f"postgresql+psycopg://{self.superuser}@/postgres"
                f"?host={self.socket_dir}&port={self.port}")

    def url(self, dbname: str = "postgres", password: bool = False,
            user: str | None = None) -> str:
        """A TCP URL for `dbname` as the test role.

        Args:
            dbname: database name.
            password: embed the password (only to test that it gets masked/refused;
                normally libpq takes it from ``PGPASSWORD``, see :meth:`password_env`).
            user: another role name.
        """
        auth = user or self.user
        if password:
            auth += f":{self.password}"
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{dbname}"

    def libpq_url(self, dbname: str = "postgres") -> str:
        """The same URL for libpq / psql / MLflow (plain ``postgresql://``)."""
        return self.url(dbname).replace("postgresql+psycopg://", "postgresql://")

    @contextlib.contextmanager
    def password_env(self) -> Iterator[None]:
        """Set ``PGPASSWORD`` (how libpq, hence psycopg, finds the password) for a block."""
        old = os.environ.get("PGPASSWORD")
        os.environ["PGPASSWORD"] = self.password
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("PGPASSWORD", None)
            else:
                os.environ["PGPASSWORD"] = old

    # ------------------------------------------------------------------ lifecycle
    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", self._run_as, "--", *cmd] if self._run_as else cmd

    def _run(self, *args: str) -> None:
        res = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                  "LANG": "C.UTF-8"})
        if res.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL: `{' '.join(args[:2])}` failed "
                               f"(exit {res.returncode}):\n{res.stdout}\n{res.stderr}\n"
                               f"{log[-3000:]}")

    def start(self) -> PostgresServer:
        """initdb, configure authentication, start, create the test role."""
        # /tmp, not pytest's tmp_path: pytest-of-<user> is private (0700) and the server
        # runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="postloan-pg-"))
        self.socket_dir.mkdir()
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            for p in (self.root, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)
        self._run("initdb", "-D", str(self.data_dir), "-U", self.superuser, "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
            # Throwaway server: durability off for speed; small footprint.
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "shared_buffers = 64MB\nmax_connections = 50\n")
        with open(self.data_dir / "pg_hba.conf", "w", encoding="utf-8") as f:
            f.write(f"local all {self.superuser} trust\n"
                    "local all all scram-sha-256\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                  "-t", "60", "start")
        self._watch()
        pw_sql = self.password.replace("'", "''")
        self.execute(f"CREATE ROLE {self.user} LOGIN PASSWORD '{pw_sql}' CREATEDB")
        return self

    def _watch(self) -> None:
        """A watchdog that stops the server if this process dies without calling stop().

        pg_ctl detaches the server from us, so a test process killed by a timeout or a
        signal would leave it running. The watchdog (a shell in its own session) polls
        our pid and, once it is gone, stops the server and removes its folder.
        """
        stop = " ".join(self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w",
                                  "stop"))
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"{stop} >/dev/null 2>&1; rm -rf '{self.root}'")
        self._watchdog = subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.root is None:
            return
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run SQL as the superuser (autocommit: CREATE DATABASE works)."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=self.superuser,
                             dbname=dbname, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, owner: str | None = None) -> str:
        """Create (or recreate) a database owned by the test role; return its URL."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(f'CREATE DATABASE "{name}" OWNER "{owner or self.user}"')
        return self.url(name)
