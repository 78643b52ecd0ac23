"""Reading and writing a book of tables: parquet files plus ``manifest.json``.

Writes are atomic: everything goes to a temporary sibling folder or file that is
renamed into place only when complete, so a failure never leaves a half-written
output. Every read validates each table against :mod:`postloan.data.schema`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from postloan.data import schema as S
from postloan.errors import DataValidationError, PostloanError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _to_arrow(name: str, df: pd.DataFrame) -> pa.Table:
    spec = S.TABLES[name]
    arrays, fields = [], []
    for col in spec.columns:
        s = df[col.name]
        if col.kind == "int":
            typ = pa.int64()
            arr = pa.array(s.to_numpy(), type=typ)
        elif col.kind == "float":
            typ = pa.float64()
            arr = pa.array(s.to_numpy(dtype="float64"), type=typ, from_pandas=True)
        elif col.kind == "date":
            typ = pa.timestamp("ms")
            arr = pa.array(pd.to_datetime(s).astype("datetime64[ms]"), type=typ, from_pandas=True)
        elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            typ = pa.string()  # text pandas holds in Arrow already: no Python objects
            arr = pa.chunked_array(pa.array(s.array)).combine_chunks().cast(typ)
        else:
            typ = pa.string()
            arr = pa.array(s.to_numpy(dtype=object), type=typ, from_pandas=True)
        arrays.append(arr)
        fields.append(pa.field(col.name, typ, nullable=col.nullable))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _write_table(arrow: pa.Table, path: Path) -> dict:
    """Write one book table; its manifest entry."""
    pq.write_table(arrow, path, compression="zstd", row_group_size=1 << 20)
    return {"file": path.name, "rows": int(arrow.num_rows), "sha256": file_sha256(path)}


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write one parquet file via a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_frame_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write any DataFrame to parquet (or CSV by suffix) atomically, without the index."""
    path = Path(path)
    if path.suffix == ".csv":
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            df.to_csv(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    write_parquet_atomic(pa.Table.from_pandas(df, preserve_index=False), path)


def write_bytes_atomic(data: bytes, path: Path, mode: int = 0o644) -> Path:
    """Write bytes via a temporary sibling file renamed into place.

    Readers never see a half-written file, and a failure (an exception, or the writer
    being interrupted) leaves the previous file, if any, and no temporary file behind.

    Args:
        data: the bytes.
        path: the target file; its folder is created if needed.
        mode: permission bits of the file (``mkstemp`` would leave 0600; reports and
            figures are meant to be shared).

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(text: str, path: Path, mode: int = 0o644) -> Path:
    """Write UTF-8 text atomically (see :func:`write_bytes_atomic`).

    Returns:
        `path` as a Path.
    """
    return write_bytes_atomic(text.encode("utf-8"), path, mode)


def write_json_atomic(obj: object, path: Path) -> None:
    """Write JSON (sorted keys, UTF-8) atomically."""
    write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False,
                                 default=str) + "\n", path)


def write_tables(
    tables: dict[str, pd.DataFrame],
    out_dir: Path,
    meta: dict | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    consume: bool = False,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Validate and write tables as parquet plus a manifest, atomically as a folder.

    The core tables (:data:`postloan.data.schema.CORE_TABLES`) must be given. An optional
    table (or ``customers_pii``) left out of `tables` is a table the book does not
    hold: the manifest lists it under ``absent_tables`` and readers skip it. The
    manifest also records the book's category vocabularies (``vocabularies``: the
    default contract, overridden by what the lender declares) and which snapshot
    feature families the book can fill (``feature_families_present``).

    Args:
        tables: tables keyed by schema name.
        out_dir: destination folder; it appears only once every file is written.
        meta: extra manifest fields (seed, configuration, dates).
        overwrite: replace an existing non-empty folder.
        progress: optional callback called with each table name as it is written.
        consume: remove each table from `tables` once written, to bound peak memory
            on large books.
        vocabularies: column -> allowed values declared by the lender (e.g. its own
            regions); columns not named keep the default contract. Also read from
            ``meta["vocabularies"]``.

    Returns:
        The manifest written.

    Raises:
        DataValidationError: a core table is missing, a table breaks the schema or a
            declared vocabulary is invalid.
    """
    from postloan.data.snapshot import feature_families_present

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise PostloanError(f"output folder {out_dir} exists and is not empty; "
                            "pass --overwrite to replace it")
    meta = dict(meta or {})
    vocab = S.resolve_vocabularies(vocabularies or meta.pop("vocabularies", None))
    missing = [t for t in S.CORE_TABLES if t not in tables]
    if missing:
        raise DataValidationError(missing[0], f"core table(s) {missing} missing: a book "
                                  f"needs {list(S.CORE_TABLES)}")
    absent = sorted(t for t in S.ABSENT_ALLOWED if t not in tables)
    present = [t for t in S.REQUIRED_TABLES if t in tables]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        entries = {}
        # A MappedBook hands over tables it has just validated against these same
        # vocabularies (read_canonical): validating again would only cost time and a copy.
        prevalidated = getattr(tables, "validated_vocabularies", None)
        # Each table is written (compressed, hashed) in a thread while the next one is
        # read and validated (a MappedBook reads it from its source when popped); one
        # write at a time, finished in order.
        with ThreadPoolExecutor(1, thread_name_prefix="postloan-write") as pool:
            writing = None

            def settle() -> None:
                entries[writing[0]] = writing[1].result()
                if progress:
                    progress(writing[0])

            for name in list(tables):
                df = tables.pop(name) if consume else tables[name]
                if prevalidated is None or prevalidated != vocab:
                    df = S.validate_table(name, df, vocab)
                arrow = _to_arrow(name, df)
                del df
                if writing is not None:
                    settle()
                writing = (name, pool.submit(_write_table, arrow, tmp / f"{name}.parquet"))
                del arrow
            if writing is not None:
                settle()
        manifest = {"tables": entries, **meta, "absent_tables": absent,
                    "vocabularies": {k: list(v) for k, v in vocab.items()},
                    "feature_families_present": feature_families_present(present)}
        manifest["content_hash"] = hashlib.sha256(
            json.dumps({k: v["sha256"] for k, v in sorted(entries.items())}).encode()
        ).hexdigest()
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, ensure_ascii=False, default=str)
            f.write("\n")
        _swap_in(tmp, out_dir)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Put a complete temporary folder in place of `out_dir` (replacing it whole)."""
    if out_dir.exists():
        trash = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        out_dir.rename(trash)
        tmp.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(out_dir)


def replace_folder(tmp: Path, out_dir: Path) -> None:
    """Put a complete folder `tmp` in place of `out_dir` (replacing it whole, by renames
    on one file system): a reader sees the old folder or the new one, never a mix."""
    Path(out_dir).parent.mkdir(parents=True, exist_ok=True)
    _swap_in(Path(tmp), Path(out_dir))


def read_manifest(data_dir: Path) -> dict:
    """Read ``manifest.json`` of a book folder ({} if there is none)."""
    path = Path(data_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataValidationError("manifest", f"unreadable {path}: {e}") from e


def book_vocabularies(manifest: Mapping) -> dict[str, tuple[str, ...]]:
    """The category vocabularies a book's manifest declares (defaults where it is silent)."""
    return S.resolve_vocabularies(manifest.get("vocabularies"))


def absent_tables(manifest: Mapping) -> list[str]:
    """Tables a book's manifest declares absent (optional tables it does not hold).

    Raises:
        DataValidationError: a core table is declared absent.
    """
    absent = list(manifest.get("absent_tables", []))
    wrong = [t for t in absent if t not in S.ABSENT_ALLOWED]
    if wrong:
        raise DataValidationError("manifest", f"only optional tables may be absent "
                                  f"({sorted(S.ABSENT_ALLOWED)})", "absent_tables", wrong)
    return absent


def read_table(data_dir: Path, name: str, columns: list[str] | None = None,
               vocabularies: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Read and validate one table of a book folder.

    Args:
        data_dir: book folder.
        name: table name.
        columns: columns to return (all by default).
        vocabularies: the book's vocabularies (read from its manifest when None).
    """
    path = Path(data_dir) / f"{name}.parquet"
    if not path.exists():
        raise DataValidationError(name, f"file not found: {path}")
    if vocabularies is None:
        vocabularies = book_vocabularies(read_manifest(data_dir))
    try:
        df = pq.read_table(path).to_pandas()
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataValidationError(name, f"unreadable parquet file {path}: {e}") from e
    df = S.validate_table(name, df, vocabularies)
    return df if columns is None else df[columns]


def read_tables(
    data_dir: Path,
    names: Iterable[str] = S.REQUIRED_TABLES,
    check_manifest: bool = True,
) -> dict[str, pd.DataFrame]:
    """Read and validate several tables; check row counts against the manifest.

    A table the manifest declares absent (``absent_tables``) is left out of the result:
    ``"surveys" in tables`` tells whether the book holds surveys. Category values are
    checked against the manifest's vocabularies.

    Raises:
        DataValidationError: a table is missing (and not declared absent), unreadable,
            breaks the schema, or its row count differs from the manifest.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataValidationError("book", f"data folder not found: {data_dir}")
    manifest = read_manifest(data_dir) if check_manifest else {}
    absent = set(absent_tables(manifest))
    vocab = book_vocabularies(manifest)
    out = {}
    for name in names:
        if name in absent:
            if (data_dir / f"{name}.parquet").exists():
                raise DataValidationError(name, "manifest.json declares the table absent "
                                          "but its file exists")
            continue
        df = read_table(data_dir, name, vocabularies=vocab)
        want = manifest.get("tables", {}).get(name, {}).get("rows")
        if want is not None and want != len(df):
            raise DataValidationError(
                name, f"row count {len(df)} differs from manifest.json ({want}): the file "
                "changed after it was written"
            )
        out[name] = df
    return out


def write_frames_atomic(frames: dict[str, pd.DataFrame], out_dir: Path,
                        formats: tuple[str, ...] = ("parquet", "csv"),
                        json_files: dict[str, object] | None = None) -> list[Path]:
    """Write several frames as one folder that appears only when every file is written.

    An existing folder is replaced as a whole, so readers never see a mix of old and
    new files, and a failure leaves the previous folder (or none) in place.
    `json_files` (file name -> JSON-able object, e.g. a run's manifest) go in the same
    folder.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        for name, df in frames.items():
            for fmt in formats:
                path = tmp / f"{name}.{fmt}"
                if fmt == "csv":
                    df.to_csv(path, index=False)
                else:
                    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        for name, obj in (json_files or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str)
                                    + "\n", encoding="utf-8")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(out_dir.iterdir())
