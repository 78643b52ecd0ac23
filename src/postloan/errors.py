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


class DataQualityError(PostloanError):
    """A book breaks a hard data-quality rule of the champion's expectations.

    Distinct from :class:`DataValidationError` (a table breaks its schema, exit code 2):
    the data is well-formed but not trustworthy (a feed late, incomplete, in the wrong
    unit, impossible combinations). The CLI exits with :attr:`exit_code` and writes
    nothing. ``report`` is the :class:`postloan.data.quality.QualityReport`.
    """

    exit_code = 4

    def __init__(self, report: object, message: str) -> None:
        self.report = report
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.report, str(self)))
