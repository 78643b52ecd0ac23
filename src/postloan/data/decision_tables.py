"""Decisions written where other systems read them: SQL tables, one transaction per run.

``postloan score --to URL`` writes the run's ``scores``, ``decisions`` and ``queue`` (the
flattened frames also written as parquet/CSV) into ``<prefix>scores``,
``<prefix>decisions`` and ``<prefix>queue``, each row carrying the run id, the as-of
date and the model versions, and records the run in ``<prefix>decision_runs``.
``postloan cycle --to URL`` adds the month's ``outreach`` rows (the contract's
``interactions`` rows of kind ``outreach``: assignment and propensity of every eligible
customer) as ``<prefix>outreach``, in the same transaction. Everything happens
in one transaction: a reader never sees half a run, and re-running an as-of date
replaces that date's rows. The view ``<prefix>todays_queue`` is the newest date's queue
with the reasons in English and Chinese (docs/online-store.md shows the SQL).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from postloan.data.database import DatabaseError, connect, first_line, mask_url
from postloan.errors import ConfigError, DataValidationError

log = logging.getLogger(__name__)

FRAMES = ("scores", "decisions", "queue")
OPTIONAL_FRAMES = ("outreach",)  # written when given (the cycle's outreach rows)
INSERT_CHUNK = 5_000
_META = ("run_id", "as_of")  # leading columns of every decision table


def _sql_type(s: pd.Series) -> sa.types.TypeEngine:
    if pd.api.types.is_bool_dtype(s):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(s):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(s):
        return sa.Float(precision=53)
    if pd.api.types.is_datetime64_any_dtype(s):
        return sa.String(10)
    return sa.Text()


def _values(s: pd.Series) -> list:
    """Column values as plain Python (None for missing), dates as ``YYYY-MM-DD``."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return [None if pd.isna(v) else v.date().isoformat() for v in s]
    if pd.api.types.is_float_dtype(s):
        a = s.to_numpy(dtype="float64")
        return [None if np.isnan(v) else float(v) for v in a]
    if pd.api.types.is_integer_dtype(s) and not s.isna().any():
        return [int(v) for v in s.to_numpy()]
    out: list = []
    for v in s.tolist():
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, bool | int | float | str):
            out.append(v)
        else:
            out.append(v.item() if isinstance(v, np.generic) else str(v))
    return out


def _table(md: sa.MetaData, name: str, df: pd.DataFrame) -> sa.Table:
    cols = [sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("as_of", sa.String(10), nullable=False, index=True)]
    cols += [sa.Column(c, _sql_type(df[c])) for c in df.columns if c not in _META]
    return sa.Table(name, md, *cols)


def _check_columns(conn: sa.Connection, table: sa.Table) -> None:
    """An existing table must have every column this run writes (else: name the fix)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    missing = [c.name for c in table.columns if c.name not in have]
    if missing:
        raise DataValidationError(table.name, f"the existing table lacks columns {missing} "
                                  "(written by an older postloan?); use another "
                                  "--table-prefix or migrate the table")


def _view_sql(prefix: str) -> str:
    return (f"CREATE VIEW {prefix}todays_queue AS "
            f"SELECT q.as_of, q.queue_rank, q.customer_id, q.recommended_action, "
            f"q.net_benefit, q.decision_basis, q.warning_level, q.segment, "
            f"q.action_reasons AS reasons_en, q.action_reasons_zh AS reasons_zh, "
            f"d.warning_reasons AS warning_reasons_en, d.warning_reasons_zh, q.run_id "
            f"FROM {prefix}queue q JOIN {prefix}decisions d "
            f"ON d.as_of = q.as_of AND d.customer_id = q.customer_id "
            f"WHERE q.as_of = (SELECT max(as_of) FROM {prefix}decision_runs) "
            f"ORDER BY q.queue_rank")


def write_decisions(url: str | Engine, frames: Mapping[str, pd.DataFrame], as_of: str,
                    run_id: str, model_versions: Mapping[str, str],
                    table_prefix: str = "postloan_") -> dict:
    """Write one run's decision frames to SQL tables in a single transaction.

    Args:
        url: SQLAlchemy URL (``sqlite:///decisions.db``, ``postgresql://...``) or engine.
        frames: ``scores``, ``decisions`` and ``queue`` as written to files (flat:
            lists and dicts already text, see :func:`postloan.decisions.batch.flat_frame`), and
            optionally ``outreach`` (:func:`postloan.operations.cycle.assign_outreach`'s rows).
        as_of: the run's as-of date (``YYYY-MM-DD``); its earlier rows are replaced.
        run_id: identifies this run (rows and the ``runs`` table carry it).
        model_versions: model -> version scored with (recorded in ``runs``).
        table_prefix: prefix of the tables and the view.

    Returns:
        ``{"url" (masked), "run_id", "as_of", "rows": {table: n}}``.

    Raises:
        ConfigError: a bad URL or prefix.
        DataValidationError: a frame is missing, or an existing table lacks a column.
        DatabaseError: the database refused the write (nothing is changed).
    """
    if not table_prefix.replace("_", "").isalnum():
        raise ConfigError(f"--table-prefix {table_prefix!r}: use letters, digits and "
                          "underscores")
    absent = [f for f in FRAMES if f not in frames]
    if absent:
        raise DataValidationError("decisions", f"missing frames {absent}")
    as_of = pd.Timestamp(as_of).date().isoformat()
    engine = url if isinstance(url, Engine) else connect(url)
    shown = mask_url(engine.url)
    md = sa.MetaData()
    names = [*FRAMES, *(f for f in OPTIONAL_FRAMES if f in frames)]
    tables = {f: _table(md, f"{table_prefix}{f}", frames[f]) for f in names}
    runs = sa.Table(f"{table_prefix}decision_runs", md,
                    sa.Column("as_of", sa.String(10), primary_key=True),
                    sa.Column("run_id", sa.String(64), nullable=False),
                    sa.Column("model_versions", sa.Text, nullable=False),
                    sa.Column("written_at", sa.String(32), nullable=False),
                    sa.Column("n_queue", sa.Integer, nullable=False))
    counts = {}
    try:
        with engine.begin() as conn:
            existing = set(sa.inspect(conn).get_table_names())
            for t in tables.values():
                if t.name in existing:
                    _check_columns(conn, t)
            md.create_all(conn)
            if f"{table_prefix}todays_queue" not in set(sa.inspect(conn).get_view_names()):
                conn.execute(sa.text(_view_sql(table_prefix)))
            for f, t in tables.items():
                conn.execute(sa.delete(t).where(t.c.as_of == as_of))
                df = frames[f]
                cols = [c for c in df.columns if c not in _META]
                data = {c: _values(df[c]) for c in cols}
                rows = [{"run_id": run_id, "as_of": as_of,
                         **{c: data[c][i] for c in cols}} for i in range(len(df))]
                for i in range(0, len(rows), INSERT_CHUNK):
                    conn.execute(sa.insert(t), rows[i:i + INSERT_CHUNK])
                counts[t.name] = len(rows)
            conn.execute(sa.delete(runs).where(runs.c.as_of == as_of))
            conn.execute(sa.insert(runs), [{
                "as_of": as_of, "run_id": run_id,
                "model_versions": json.dumps(dict(model_versions), sort_keys=True),
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "n_queue": len(frames["queue"])}])
    except DBAPIError as e:
        raise DatabaseError(f"writing decisions to {shown} failed, nothing changed: "
                            f"{first_line(e)}") from None
    finally:
        if not isinstance(url, Engine):
            engine.dispose()
    log.info("decisions of %s written to %s (%s)", as_of, shown, counts)
    return {"url": shown, "run_id": run_id, "as_of": as_of, "rows": counts}
