"""The online snapshot store: each active customer's latest point-in-time snapshot, by id.

Calling systems (a collections platform, a CRM, an app back end) hold a customer id,
not the 62 snapshot fields. ``postloan materialize`` builds the snapshot of every active
customer as of a date with the one feature path (:func:`postloan.data.snapshot.build_snapshot`)
and writes it here; the service looks customers up by id and scores the stored record
exactly as if the caller had sent it.

Storage is two keyed tables in any SQLAlchemy database (an embedded SQLite file by
default, PostgreSQL in production):

- ``<prefix>snapshot_dates``: one row per materialised as-of date (book manifest hash,
  customer count, when it was written);
- ``<prefix>snapshots``: one row per (as-of date, customer id), the customer's record as
  the service's JSON body (:func:`postloan.data.snapshot.to_json_record`).

A materialisation is one transaction: delete that date's rows, insert the new ones,
record the date. A lookup is one statement that reads the newest recorded date and its
rows together, so a reader sees the old date or the new one, never a mix, and
re-materialising a date is idempotent. Why not Feast: see docs/online-store.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from postloan.data.database import DatabaseError, connect, first_line, mask_url
from postloan.data.snapshot import SNAPSHOT_FIELDS, parse_as_of, to_json_record
from postloan.errors import ConfigError, DataValidationError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "postloan_"
INSERT_CHUNK = 5_000  # rows per executemany: bounded memory on million-customer books


@dataclass
class Lookup:
    """What the store holds for the ids asked.

    Attributes:
        as_of: the snapshot date served (None when the store is empty).
        manifest_hash: content hash of the book the snapshots were built from.
        records: customer id -> the record (the service's JSON customer body; its JSON
            text when looked up with ``raw=True``).
        missing: ids asked for that the store does not hold (not active at `as_of`).
    """

    as_of: str | None
    manifest_hash: str | None
    records: dict[int, dict | str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    if not prefix.replace("_", "").isalnum():
        raise ConfigError(f"table prefix {prefix!r}: use letters, digits and underscores")
    md = sa.MetaData()
    dates = sa.Table(
        f"{prefix}snapshot_dates", md,
        sa.Column("as_of", sa.String(10), primary_key=True),
        sa.Column("manifest_hash", sa.String(64), nullable=False),
        sa.Column("n_customers", sa.Integer, nullable=False),
        sa.Column("materialized_at", sa.String(32), nullable=False),
    )
    snaps = sa.Table(
        f"{prefix}snapshots", md,
        sa.Column("as_of", sa.String(10), primary_key=True),
        sa.Column("customer_id", sa.BigInteger, primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
    )
    return md, dates, snaps


class SnapshotStore:
    """Latest point-in-time snapshot per customer id, in a SQL database.

    Args:
        url: SQLAlchemy URL of the store (``sqlite:///path/online.db`` or
            ``postgresql://user@host/db``; credentials from the environment/.pgpass).
        table_prefix: prefix of the two tables (several stores can share a database).
        keep: how many as-of dates to keep (older ones are pruned when a newer date is
            materialised; back-testing reads books, not the store).
    """

    def __init__(self, url: str, table_prefix: str = DEFAULT_PREFIX, keep: int = 3) -> None:
        if keep < 1:
            raise ConfigError(f"keep={keep}: keep at least one as-of date")
        self.url = mask_url(url)
        self.keep = keep
        self._md, self._dates, self._snaps = _tables(table_prefix)
        self.engine: Engine = connect(url)
        try:
            self._md.create_all(self.engine)
        except DBAPIError as e:
            raise DatabaseError(f"cannot create the store's tables in {self.url}: "
                                f"{first_line(e)}") from None
        # Lookups read through their own pool in autocommit: one statement is one
        # consistent read anyway, and no BEGIN/ROLLBACK round trips are paid per request.
        self._reader: Engine = connect(url, isolation_level="AUTOCOMMIT")
        d, s = self._dates, self._snaps
        newest = sa.select(sa.func.max(d.c.as_of)).scalar_subquery()
        if self.engine.dialect.name == "postgresql":
            # One statement text whatever the number of ids, so psycopg prepares it once.
            ids = s.c.customer_id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.BigInteger)))
        else:
            ids = s.c.customer_id.in_(sa.bindparam("ids", expanding=True))
        # One statement: the newest date's hash and the asked rows, read together.
        self._lookup_sql = (
            sa.select(d.c.as_of, d.c.manifest_hash, s.c.customer_id, s.c.record)
            .select_from(d.outerjoin(s, sa.and_(s.c.as_of == d.c.as_of, ids)))
            .where(d.c.as_of == newest))

    def close(self) -> None:
        """Release the connection pools."""
        self.engine.dispose()
        self._reader.dispose()

    def materialize(self, snapshot: pd.DataFrame, manifest_hash: str,
                    progress: Callable[[int], None] | None = None) -> dict:
        """Write one as-of date's snapshots in one transaction (replacing that date's rows).

        Args:
            snapshot: :func:`postloan.data.snapshot.build_snapshot` output for ONE as-of date
                (labels, if any, are not stored).
            manifest_hash: the book's ``content_hash`` (from its manifest).
            progress: called with the number of rows written after each chunk.

        Returns:
            ``{"as_of", "n_customers", "manifest_hash", "materialized_at", "pruned"}``.

        Raises:
            DataValidationError: missing snapshot fields, several as-of dates, or
                duplicate customer ids.
            DatabaseError: the database refused the write (nothing is changed).
        """
        missing = [c for c in SNAPSHOT_FIELDS if c not in snapshot.columns]
        if missing:
            raise DataValidationError("snapshot", f"missing fields {missing}")
        dates = pd.to_datetime(snapshot["as_of"]).unique()
        if len(dates) != 1:
            raise DataValidationError("snapshot", f"one as-of date per materialisation, "
                                      f"got {len(dates)}", column="as_of")
        dup = snapshot["customer_id"].duplicated(keep=False)
        if dup.any():
            raise DataValidationError("snapshot", "duplicate customer ids",
                                      column="customer_id",
                                      rows=snapshot.loc[dup, ["customer_id"]].head(5))
        as_of = parse_as_of(dates[0]).date().isoformat()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        rows = _records(snapshot[list(SNAPSHOT_FIELDS)], as_of)
        d, s = self._dates, self._snaps
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(s).where(s.c.as_of == as_of))
                conn.execute(sa.delete(d).where(d.c.as_of == as_of))
                n = 0
                for chunk in _chunks(rows, INSERT_CHUNK):
                    conn.execute(sa.insert(s), chunk)
                    n += len(chunk)
                    if progress:
                        progress(len(chunk))
                conn.execute(sa.insert(d), [{"as_of": as_of, "manifest_hash": manifest_hash,
                                             "n_customers": n, "materialized_at": stamp}])
                kept = conn.execute(sa.select(d.c.as_of).order_by(d.c.as_of.desc())
                                    .limit(self.keep)).scalars().all()
                old = conn.execute(sa.select(d.c.as_of).where(d.c.as_of.not_in(kept))
                                   ).scalars().all()
                if old:
                    conn.execute(sa.delete(s).where(s.c.as_of.in_(old)))
                    conn.execute(sa.delete(d).where(d.c.as_of.in_(old)))
        except DBAPIError as e:
            raise DatabaseError(f"materialising {as_of} into {self.url} failed, nothing "
                                f"changed: {first_line(e)}") from None
        log.info("materialised %d customers as of %s into %s", n, as_of, self.url)
        return {"as_of": as_of, "n_customers": n, "manifest_hash": manifest_hash,
                "materialized_at": stamp, "pruned": sorted(old)}

    def lookup(self, customer_ids: Sequence[int], raw: bool = False) -> Lookup:
        """The newest snapshot of each id (one consistent read).

        Args:
            customer_ids: ids to look up (duplicates are answered once).
            raw: keep each record as its JSON text (the service validates the text
                directly with its request model: one parse instead of two).

        Returns:
            A :class:`Lookup`; ids the store does not hold are in ``missing``.

        Raises:
            DatabaseError: the database is unreachable.
        """
        ids = list(dict.fromkeys(int(i) for i in customer_ids))
        try:
            with self._reader.connect() as conn:
                rows = conn.execute(self._lookup_sql, {"ids": ids}).all()
        except DBAPIError as e:
            raise DatabaseError(f"online store {self.url} unreachable: {first_line(e)}"
                                ) from None
        if not rows:
            return Lookup(None, None, missing=ids)
        records = {int(r.customer_id): r.record if raw else json.loads(r.record)
                   for r in rows if r.customer_id is not None}
        return Lookup(rows[0].as_of, rows[0].manifest_hash, records,
                      [i for i in ids if i not in records])

    def dates(self) -> pd.DataFrame:
        """The materialised as-of dates, newest first (hash, customers, when written)."""
        d = self._dates
        with self.engine.connect() as conn:
            res = conn.execute(sa.select(d).order_by(d.c.as_of.desc()))
            return pd.DataFrame(res.all(), columns=list(res.keys()))


def _records(snap: pd.DataFrame, as_of: str) -> list[dict]:
    return [{"as_of": as_of, "customer_id": int(r["customer_id"]),
             "record": json.dumps(to_json_record(r), ensure_ascii=False, allow_nan=False)}
            for r in snap.to_dict("records")]


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
