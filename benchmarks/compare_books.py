"""Compare two parquet books table by table (the ingest speed-up check).

    python benchmarks/compare_books.py BOOK_A BOOK_B

Exit status 0 when every table holds identical data (same schema, same values, same
row order) and the manifests agree on tables, rows and vocabularies; prints what
differs otherwise. File hashes are reported too: equal files mean bit-identical
parquet bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq


def compare(a: Path, b: Path) -> list[str]:
    ma = json.loads((a / "manifest.json").read_text(encoding="utf-8"))
    mb = json.loads((b / "manifest.json").read_text(encoding="utf-8"))
    diffs = []
    if sorted(ma["tables"]) != sorted(mb["tables"]):
        diffs.append(f"tables differ: {sorted(ma['tables'])} vs {sorted(mb['tables'])}")
    for key in ("absent_tables", "vocabularies", "feature_families_present", "sources"):
        if ma.get(key) != mb.get(key):
            diffs.append(f"manifest {key} differs")
    for name in sorted(set(ma["tables"]) & set(mb["tables"])):
        ta, tb = pq.read_table(a / f"{name}.parquet"), pq.read_table(b / f"{name}.parquet")
        same_file = ma["tables"][name]["sha256"] == mb["tables"][name]["sha256"]
        if not ta.schema.equals(tb.schema, check_metadata=True):
            diffs.append(f"{name}: schema differs:\n{ta.schema}\nvs\n{tb.schema}")
        elif not ta.equals(tb):
            bad = [c for c in ta.column_names if not ta[c].equals(tb[c])]
            diffs.append(f"{name}: data differs in columns {bad}")
        print(f"{name}: {ta.num_rows:,} rows, data "
              f"{'identical' if ta.equals(tb) else 'DIFFERENT'}, parquet file "
              f"{'bit-identical' if same_file else 'bytes differ'}")
    return diffs


if __name__ == "__main__":
    d = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(d) if d else "books identical")
    sys.exit(1 if d else 0)
