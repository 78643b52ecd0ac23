"""Helpers shared by the benchmark scripts: results JSON and docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from postloan.data import io

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = ("# Benchmarks\n\nMeasured by the scripts in `benchmarks/` (`make bench`); each script "
          "rewrites only its own section. Machine: 2 cores, 24 GiB, no GPU.\n")


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": round(os.getloadavg()[0], 1)}  # timings drift with the load


def tree_count(bundle) -> int:
    """Trees the predictor and TreeSHAP walk for a champion; 0 for the logistic family
    (`make demo` registers it when it wins on validation), whose model has no trees."""
    return bundle.booster.num_trees() if bundle.family == "lightgbm" else 0


def describe_models(trees: dict[str, int], families: dict[str, str]) -> str:
    """``default_risk 212 trees, churn logistic (no trees)``: what a measurement ran on."""
    return ", ".join(f"{m} {n} trees" if families.get(m, "lightgbm") == "lightgbm"
                     else f"{m} logistic (no trees)" for m, n in trees.items())


def write_json(obj: dict, name: str) -> Path:
    path = RESULTS / f"{name}.json"
    io.write_json_atomic(obj, path)
    return path


def update_section(key: str, markdown: str) -> None:
    """Replace (or append) the section between `<!-- key:start -->` and `<!-- key:end -->`."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    block = f"<!-- {key}:start -->\n{markdown.rstrip()}\n<!-- {key}:end -->"
    pat = re.compile(rf"<!-- {re.escape(key)}:start -->.*?<!-- {re.escape(key)}:end -->", re.S)
    text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
    io.write_text_atomic(text.rstrip() + "\n", DOC)
