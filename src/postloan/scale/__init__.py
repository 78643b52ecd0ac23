"""Scale out: a book split into customer partitions, run locally or on a Dask cluster.

One job per module, every public name re-exported here (``from postloan.scale import
score_book``):

- :mod:`~postloan.scale.partitions`: the partitioned-book layout (customers assigned
  by a stable hash of ``customer_id``), :func:`partition_of`, writing and reading
  partitioned books, staged (atomic) output folders;
- :mod:`~postloan.scale.runners`: :class:`LocalRunner` (one partition at a time in
  this process: memory bounded by the largest partition) and :class:`DaskRunner` (one
  task per partition on a ``distributed`` cluster), :func:`dask_client`;
- :mod:`~postloan.scale.tasks`: :func:`snapshot_book` and :func:`score_book` with their
  per-partition tasks (scoring runs the one batch step, :mod:`postloan.decisions.batch`);
- :mod:`~postloan.scale.dask_training`: labelled snapshots per partition and LightGBM
  fitted with ``lightgbm.dask``.

:func:`read_partition` returns partition *k* as the same dict of validated tables
:func:`postloan.data.io.read_tables` returns, so :func:`~postloan.data.snapshot.build_snapshot`
and :func:`~postloan.decisions.batch.score_and_decide` run on it unchanged. Paths (book, models,
outputs) must be visible to every worker: a local disk for a ``LocalCluster``, a
shared file system for a remote cluster. ``docs/scale.md`` is the user's guide.
"""

from postloan.errors import EngineError
from postloan.scale.dask_training import (
    fit_lightgbm_dask,
    prepare_training,
    sample_customers,
    train_one_dask,
)
from postloan.scale.partitions import (
    LAYOUT,
    SKIP_TABLES,
    WHOLE_TABLES,
    book_manifest,
    is_partitioned,
    part_name,
    partition_book,
    partition_of,
    read_output,
    read_partition,
    write_partitioned_book,
)
from postloan.scale.runners import ENGINES, DaskRunner, LocalRunner, dask_client
from postloan.scale.tasks import (
    global_warning_rank,
    read_score_output,
    score_book,
    snapshot_book,
    summarise_snapshot_stats,
)

__all__ = [
    "ENGINES", "LAYOUT", "SKIP_TABLES", "WHOLE_TABLES", "DaskRunner", "EngineError",
    "LocalRunner", "book_manifest", "dask_client", "fit_lightgbm_dask", "global_warning_rank",
    "is_partitioned", "part_name", "partition_book", "partition_of", "prepare_training",
    "read_output", "read_partition", "read_score_output", "sample_customers", "score_book",
    "snapshot_book", "summarise_snapshot_stats", "train_one_dask", "write_partitioned_book",
]
