"""NannyML's CBPE on the scores of benchmarks/performance_estimation.py.

Runs in a virtualenv of its own (nannyml pins conflict with postloan's; it is no project
dependency), so it imports nothing from postloan: it reads the scores parquet and a plan
(per monitored month, its reference months) and writes NannyML's estimated ROC AUC with
its confidence band per month as JSON.

    /tmp/nannyml-env/bin/python benchmarks/nannyml_cbpe.py SCORES.parquet PLAN.json OUT.json
"""

from __future__ import annotations

import json
import sys
import warnings

import nannyml as nml
import pandas as pd


def main() -> None:
    scores_path, plan_path, out_path = sys.argv[1:4]
    scores = pd.read_parquet(scores_path)
    scores["as_of"] = pd.to_datetime(scores["as_of"])
    plan = json.loads(open(plan_path).read())
    out = {"version": nml.__version__, "estimates": {}}
    warnings.simplefilter("ignore")
    for item in plan:
        book = scores[scores["book"] == item["book"]]
        lo, hi = (pd.Timestamp(d) for d in item["reference"])
        ref = book[(book["as_of"] >= lo) & (book["as_of"] <= hi)]
        cur = book[book["as_of"] == pd.Timestamp(item["as_of"])]
        frame = {"y_pred_proba": "p", "y_true": "y"}

        def prepared(df: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"p": df["p"].to_numpy(), "y": df["y"].to_numpy().astype(int),
                                 "y_pred": (df["p"] >= 0.5).astype(int).to_numpy()})
        # One chunk per frame: the reference as a whole, the month as a whole. NannyML
        # calibrates the probabilities on the reference (isotonic) when they are not.
        est = nml.CBPE(problem_type="classification_binary", metrics=["roc_auc"],
                       y_pred_proba=frame["y_pred_proba"], y_pred="y_pred",
                       y_true=frame["y_true"], chunk_number=1)
        est.fit(prepared(ref))
        res = est.estimate(prepared(cur)).filter(period="analysis").to_df()
        roc = res["roc_auc"]
        auc, se = float(roc["value"].iloc[0]), float(roc["sampling_error"].iloc[0])
        out["estimates"][f"{item['book']}|{item['as_of']}"] = {
            "auc": auc, "sampling_error": se,
            # NannyML's own band: 3 sampling errors either side.
            "auc_low": float(roc["lower_confidence_boundary"].iloc[0]),
            "auc_high": float(roc["upper_confidence_boundary"].iloc[0]),
            # The same error at the 95% level, comparable with ours.
            "auc_low_95": auc - 1.96 * se, "auc_high_95": auc + 1.96 * se,
        }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
