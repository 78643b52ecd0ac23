"""One small exception family. The CLI turns these into a short message and exit code 2."""

from __future__ import annotations


class PostloanError(Exception):
    """Base class of every error postloan raises on purpose (bad input, config, missing model)."""


class DataValidationError(PostloanError):
    """A table or record breaks its schema: names the table, column, rule and offending rows."""

    def __init__(
        self,
        table: str,
        rule: str,
        column: str | None = None,
        rows: object | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.rule = rule
        self.rows = rows
        where = f"table '{table}'" + (f", column '{column}'" if column else "")
        msg = f"{where}: {rule}"
        if rows is not None and len(str(rows)) > 0:
            msg += f"\nfirst offending rows:\n{rows}"
        super().__init__(msg)

    def __reduce__(self):
        # Rebuild from the fields, not the message: the error crosses process boundaries
        # (Dask workers) and must arrive as itself.
        return (type(self), (self.table, self.rule, self.column, self.rows))


class ConfigError(PostloanError):
    """A configuration file or setting is missing or has the wrong type/value."""


class ModelNotFoundError(PostloanError):
    """A requested model (name, version, alias or folder) does not exist or cannot be loaded."""


class EngineError(PostloanError):
    """A scale-out run could not complete: unreachable scheduler, a partition that failed
    beyond the engine's retries, or a book without the partitioned layout."""


class SourceError(PostloanError):
    """A lender's source cannot be read: refused connection, wrong password, a missing
    table, file or column, a query over its statement timeout. The message names the
    source with its URL masked (``postgresql://user:***@host/db``)."""
