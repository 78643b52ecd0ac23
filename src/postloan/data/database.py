"""SQL databases: one way to open a connection pool, masked URLs, errors that name the fix.

Used by the online snapshot store (:mod:`postloan.data.online`) and the decision tables
(:mod:`postloan.data.decision_tables`). URLs are SQLAlchemy URLs (``sqlite:///file.db``,
``postgresql://user@host/db``). A password is never logged, never written to a manifest
or MLflow, never shown in an error: :func:`mask_url` is what goes anywhere a URL is
shown. Credentials come from the environment (``PGPASSWORD``) or ``~/.pgpass`` (libpq
reads both), so a URL in a file need not hold one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from postloan.errors import ConfigError, PostloanError

log = logging.getLogger(__name__)


class DatabaseError(PostloanError):
    """A database could not be reached or refused a statement (URL shown masked)."""


def mask_url(url: str | sa.URL) -> str:
    """The URL with its password replaced by ``***`` (safe to log and to show).

    Args:
        url: a SQLAlchemy URL or its string.

    Returns:
        The URL as text, password masked (also for URIs SQLAlchemy does not parse).
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a SQLAlchemy URL (an MLflow http:// or file: URI, a typo): mask any
        # user:password@ part all the same.
        return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", str(url))


def _normalise(url: str) -> sa.URL:
    """Parse `url`; plain ``postgresql://`` goes through psycopg 3 (our only PG driver)."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise ConfigError(f"database URL {mask_url(url)!r} does not parse: use a SQLAlchemy "
                          "URL such as sqlite:///decisions.db or "
                          "postgresql://user@host:5432/db") from e
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def connect(url: str, **kwargs: Any) -> Engine:
    """A connection pool for `url`, checked with one round trip.

    SQLite files get WAL journaling, so readers (the service) never wait for a writer
    (a materialisation) and see either the old or the new commit.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://user@host/db``).
        **kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine (a pool; cheap to keep for the life of a process).

    Raises:
        ConfigError: the URL does not parse or names a driver that is not installed.
        DatabaseError: the server refused the connection or the credentials.
    """
    u = _normalise(url)
    try:
        engine = sa.create_engine(u, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as e:
        raise ConfigError(f"database URL {mask_url(u)!r}: driver {u.drivername!r} is not "
                          "installed") from e
    if u.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except DBAPIError as e:
        engine.dispose()
        raise DatabaseError(f"cannot connect to {mask_url(u)}: {first_line(e)}") from None
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def first_line(e: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's statement dump.

    The statement parameters (which could hold customer values) are left out.
    """
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
