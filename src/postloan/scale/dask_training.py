"""Training on a partitioned book: labelled snapshots per partition, LightGBM on Dask."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from postloan.data import io
from postloan.data import schema as S
from postloan.errors import DataValidationError
from postloan.scale.partitions import book_manifest, part_name, read_partition
from postloan.scale.tasks import _partition_snapshots

_SAMPLE_MIX = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 constant: independent of the others


def sample_customers(customer_id: np.ndarray | pd.Series, share: float) -> np.ndarray:
    """Deterministic customer sample (True = in it) of about `share` of the customers.

    Independent of the partitions and of the validation hold-out, so a sample keeps
    both the partition mix and the 1-in-5 validation share.
    """
    if share >= 1.0:
        return np.ones(len(customer_id), dtype=bool)
    ids = np.asarray(customer_id).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = ids * _SAMPLE_MIX
    h ^= h >> np.uint64(31)
    return (h % np.uint64(1_000_000)) < np.uint64(int(share * 1_000_000))


def _train_task(k: int, book: str, dates: list[str], share: float, with_truth: bool,
                tmp: str, categories: dict | None = None) -> dict | None:
    from postloan.data.features import build_features
    from postloan.models.training import validation_customers

    names = [*S.REQUIRED_TABLES, *(["truth"] if with_truth else [])]
    tables = read_partition(Path(book), k, names)
    frames = _partition_snapshots(tables, [pd.Timestamp(d) for d in dates], True)
    if not frames:
        return None
    snap = pd.concat(frames, ignore_index=True)
    from postloan.data.snapshot import LABELS

    part = build_features(snap, categories)
    part["as_of"] = snap["as_of"].to_numpy()
    part["held"] = validation_customers(snap["customer_id"])
    for lab in LABELS:
        part[lab] = snap[lab].to_numpy()
    io.write_frame_atomic(part, Path(tmp) / part_name(k))
    in_sample = sample_customers(snap["customer_id"], share)
    truth = None
    if with_truth:
        tr = tables["truth"]
        truth = tr[tr["customer_id"].isin(snap.loc[in_sample, "customer_id"].unique())]
    return {"sample": snap[in_sample].reset_index(drop=True), "truth": truth,
            "rows": len(snap)}


def prepare_training(book: Path, dates: Sequence[pd.Timestamp], runner: Any, work_dir: Path,
                     max_sample_customers: int = 50_000, with_truth: bool = True) -> dict:
    """Labelled snapshots of every partition at `dates`, for :func:`train_one_dask`.

    Every partition's features and labels are written to ``work_dir/part-XXXXX.parquet``
    (the distributed training set); a deterministic customer sample of at most about
    `max_sample_customers` comes back to the caller as snapshot rows (and truth rows).

    Returns:
        ``parts`` (paths), ``sample`` (stacked snapshot rows of the sampled customers),
        ``truth`` (their truth rows or None), ``share`` (the sampled share), ``rows``.
    """
    manifest = book_manifest(book)
    n_customers = manifest["tables"]["customers"]["rows"]
    share = min(1.0, max_sample_customers / max(n_customers, 1))
    with_truth = with_truth and "truth" in manifest["tables"]
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    categories = S.snapshot_categories(io.book_vocabularies(manifest))
    res = runner.map(_train_task, range(manifest["n_partitions"]), str(book),
                     [str(pd.Timestamp(d).date()) for d in dates], share, with_truth,
                     str(work_dir), categories)
    done = [r for r in res if r is not None]
    if not done:
        raise DataValidationError("loans", "no loan is open at the training dates")
    truth = pd.concat([r["truth"] for r in done], ignore_index=True) if with_truth else None
    return {"parts": [str(work_dir / part_name(k)) for k, r in enumerate(res) if r is not None],
            "sample": pd.concat([r["sample"] for r in done], ignore_index=True),
            "truth": truth, "share": share, "rows": int(sum(r["rows"] for r in done)),
            "book_range": manifest.get("book_range"), "categories": categories}


def fit_lightgbm_dask(client: Any, parts: Sequence[str], label: str,
                      train_dates: Sequence[pd.Timestamp], params: Any,
                      categorical_features: Sequence[str], monotone: dict | None,
                      n_rounds: int) -> Any:
    """Fit LightGBM with ``lightgbm.dask`` on the training rows of every partition.

    Training rows: as-of in `train_dates`, outside the validation hold-out, label
    observed (the rule of :func:`postloan.models.training.train_one`). ``lightgbm.dask`` has
    no early stopping: the round count is given.

    Returns:
        The fitted :class:`lightgbm.Booster`.
    """
    import dask.dataframe as dd
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    from postloan.data.features import FEATURE_NAMES
    from postloan.models.training import lightgbm_params

    ddf = dd.read_parquet(list(parts))
    dates = [pd.Timestamp(d) for d in train_dates]
    ddf = ddf[ddf["as_of"].isin(dates) & ~ddf["held"] & ddf[label].notnull()]
    X = ddf[list(FEATURE_NAMES)]
    y = ddf[label].astype("int64")
    p = lightgbm_params(params, list(FEATURE_NAMES), monotone)
    p.pop("metric", None)
    p.pop("num_threads", None)  # lightgbm.dask uses each worker's own thread count
    clf = DaskLGBMClassifier(client=client, n_estimators=int(n_rounds), **p)
    with warnings.catch_warnings():  # "n_jobs will be ignored": lightgbm.dask sets threads
        warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
        clf.fit(X, y,
                categorical_feature=[c for c in categorical_features if c in FEATURE_NAMES])
    booster: lgb.Booster = clf.booster_
    return booster


def train_one_dask(model: str, client: Any, prepared: dict,
                   splits: dict[str, list[pd.Timestamp]], cfg: Any) -> Any:
    """:func:`postloan.models.training.train_one` with the booster fitted on the Dask cluster.

    The round count comes from LightGBM's early stopping on the customer sample (its
    training rows against the hold-out customers, exactly the local rule); the final
    booster is then fitted on every partition's training rows with that many rounds.
    Calibration, the baseline, the OOT metrics and SHAP use the sample.

    Returns:
        A :class:`postloan.models.training.TrainOutput` (same bundle type as the local engine).
    """
    from postloan.models.bundle import MODELS
    from postloan.models.training import fit_lightgbm, train_one

    label = MODELS[model]
    facts: dict[str, Any] = {}

    def fit(X_tr, y_tr, X_va, y_va, params, cats, monotone):
        probe = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, cats, monotone)
        rounds = max(int(probe.best_iteration), 1)
        facts.update(rounds=rounds, sample_train_rows=len(X_tr))
        booster = fit_lightgbm_dask(client, prepared["parts"], label, splits["train"],
                                    params, cats, monotone, rounds)
        booster.best_iteration = rounds
        return booster

    out = train_one(model, prepared["sample"], splits, cfg, prepared["truth"], fit=fit,
                    categories=prepared.get("categories"))
    out.bundle.metadata["engine"] = {
        "name": "dask", "n_workers": len(client.scheduler_info(n_workers=-1)["workers"]),
        "rounds": facts["rounds"],
        "rounds_from": "early stopping on the customer sample",
        "sample_share": prepared["share"], "sample_train_rows": facts["sample_train_rows"],
        "calibration_baseline_evaluation": "customer sample"}
    return out
