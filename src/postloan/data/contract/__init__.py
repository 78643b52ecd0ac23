"""Bring your own book: a lender's source mapping (the data contract) and the ingest.

- :mod:`~postloan.data.contract.mapping`: the YAML source mapping, validated with pydantic.
- :mod:`~postloan.data.contract.convert`: pure column conversions (casts, code maps, units).
- :mod:`~postloan.data.contract.readers`: chunked readers (PostgreSQL, DuckDB, CSV, parquet).
- :mod:`~postloan.data.contract.ingest`: one canonical table at a time, validated.
- :mod:`~postloan.data.contract.profile`: the data profile behind ``postloan check-data``.

``docs/data-contract.md`` is the user's guide.
"""

from postloan.data.contract.ingest import (
    DISABLES,
    MappedBook,
    absent_tables,
    ingest_meta,
    read_canonical,
)
from postloan.data.contract.mapping import (
    CORE_TABLES,
    OPTIONAL_TABLES,
    SourceMapping,
    load_mapping,
    parse_mapping,
)
from postloan.data.database import mask_url

__all__ = [
    "CORE_TABLES",
    "DISABLES",
    "OPTIONAL_TABLES",
    "MappedBook",
    "SourceMapping",
    "absent_tables",
    "ingest_meta",
    "load_mapping",
    "mask_url",
    "parse_mapping",
    "read_canonical",
]
