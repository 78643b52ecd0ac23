"""The BentoML service: the class itself, its ASGI app in-process, and a real `bentoml serve`.

Real champions come from the session's ``trained`` fixture (the real training pipeline
on the small book): a bundle folder and a SQLite registry. BentoML's ``to_asgi()`` can be built only
once per process, so one session fixture holds the app under a TestClient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from postloan.data.features import FEATURE_NAMES
from postloan.data.snapshot import NUMERIC_FIELDS, SNAPSHOT_FIELDS, build_snapshot, to_json_record
from postloan.decisions import strategy
from postloan.decisions.batch import SCORE_COLUMNS, score_snapshot
from postloan.models.bundle import MODELS
from postloan.models.store import load_bundles_from_dir, load_uplift_from_dir

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `serving` is a folder of the repo, not an installed package
    sys.path.insert(0, str(ROOT))

from serving.process import ServiceProcess, child_env  # noqa: E402

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789abcdef"
MAX_BATCH = 60
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ---------------------------------------------------------------------------- fixtures
DECIDING = ("payment_reminder", "retention_offer")


@pytest.fixture(scope="session")
def champions(trained, uplift_trained, tmp_path_factory) -> dict:
    """The session's champions (conftest ``trained``): a bundle folder and a SQLite registry.

    The folder also holds the four uplift champions (conftest ``uplift_trained``), with
    the decision gate's verdict set to "learned" for :data:`DECIDING` and "constants" for
    the others, so every path of the one decision is served (the small book's held-out
    contacts are too few for the gate to say "learned" by itself).
    """
    import shutil

    models = tmp_path_factory.mktemp("served") / "models"
    shutil.copytree(trained["root"] / "models", models)
    for r in uplift_trained["results"]:
        dst = models / r["model"] / "v1"
        shutil.copytree(r["bundle"], dst)
        meta = json.loads((dst / "uplift.json").read_text())
        meta["decision_gate"] = {**meta["decision_gate"], "decides": r["action"] in DECIDING}
        (dst / "uplift.json").write_text(json.dumps(meta))
    return {"uri": trained["uri"], "models": models}


@pytest.fixture(scope="session")
def service_module():
    """Import the service module without leaking its OMP_NUM_THREADS into other tests."""
    before = os.environ.get("OMP_NUM_THREADS")
    import serving.service as module

    if before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    return module


@pytest.fixture(scope="session")
def online_store(snapshot, tmp_path_factory) -> str:
    """The session snapshot materialised into a real SQLite online store."""
    from postloan.data.online import SnapshotStore

    url = f"sqlite:///{tmp_path_factory.mktemp('online') / 'online.db'}"
    store = SnapshotStore(url)
    store.materialize(snapshot, "book-hash")
    store.close()
    return url


@pytest.fixture(scope="session")
def service_env(champions, online_store, tmp_path_factory):
    """The service's environment for the session (restored at the end)."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POSTLOAN_ONLINE_STORE", online_store)
        mp.setenv("POSTLOAN_MODEL_DIR", str(champions["models"]))
        mp.setenv("POSTLOAN_API_TOKENS", f"another-token-abcdefghij, {TOKEN}")
        mp.setenv("POSTLOAN_MAX_BATCH", str(MAX_BATCH))
        mp.setenv("POSTLOAN_AUDIT_LOG", str(audit))
        mp.delenv("POSTLOAN_INSECURE_LOCAL", raising=False)
        yield {"audit": audit}


@pytest.fixture(scope="session")
def client(service_env, service_module):
    """The service's ASGI app under a TestClient (start-up and shut-down included)."""
    from starlette.testclient import TestClient

    app = service_module.PostloanService.to_asgi()
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def snapshot(small_tables) -> pd.DataFrame:
    dates = np.sort(small_tables["repayments"]["statement_date"].unique())
    return build_snapshot(small_tables, pd.Timestamp(dates[18]), with_labels=False)


@pytest.fixture(scope="session")
def sample(snapshot) -> pd.DataFrame:
    """MAX_BATCH customers, the riskiest ones included so every warning level shows up."""
    risky = snapshot.sort_values(["dpd_current", "customer_id"], ascending=[False, True])
    rows = pd.concat([risky.head(20), snapshot.head(MAX_BATCH)]).drop_duplicates("customer_id")
    return rows.head(MAX_BATCH).reset_index(drop=True)


@pytest.fixture(scope="session")
def records(sample) -> list[dict]:
    return [to_json_record(r) for r in sample.to_dict("records")]


@pytest.fixture(scope="session")
def batch(champions, sample) -> dict:
    """What batch scoring says for the same customers."""
    bundles = load_bundles_from_dir(champions["models"])
    uplift = load_uplift_from_dir(champions["models"])
    assert set(uplift) == set(strategy.ACTIONS)
    scored = score_snapshot(bundles, sample)
    cfg = strategy.load_strategy_config()
    learned = strategy.learned_effects(uplift, strategy.uplift_features(sample))
    assert learned.deciding == frozenset(DECIDING)
    return {"scored": scored, "decisions": strategy.apply_strategy(scored, sample, cfg, learned),
            "cfg": cfg}


# ---------------------------------------------------------------------------- happy paths
def test_score_equals_batch_scores_exactly(client, records, batch):
    r = client.post("/score", json={"customers": records}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["model_versions"]) == set(MODELS)
    res = body["results"]
    scored, dec = batch["scored"], batch["decisions"]
    assert [x["customer_id"] for x in res] == scored["customer_id"].tolist()
    for col in SCORE_COLUMNS.values():  # bit for bit, not approximately
        assert [x[col] for x in res] == scored[col].tolist()
    for m in MODELS:
        assert [x["reasons"][m] for x in res] == scored[f"reasons_{m}"].tolist()
    for col in ("risk_grade", "warning_level", "segment", "recommended_action", "signals",
                "warning_reasons", "response"):
        assert [x[col] for x in res] == dec[col].astype(object).tolist(), col
    for col in ("expected_loss", "ead"):
        assert [x[col] for x in res] == dec[col].tolist(), col
    assert {x["warning_level"] for x in res} >= {"green", "red"}


def test_the_service_decides_like_the_batch(client, records, batch):
    """The one decision reaches every endpoint: /score, /early_warning and /prioritize
    give every customer the batch's action, net benefit, basis, reasons and per-action
    numbers (to 1e-9), with learned effects deciding some actions and constants others."""
    dec = batch["decisions"]
    by_id = dec.set_index("customer_id")
    score = client.post("/score", json={"customers": records}, headers=AUTH).json()["results"]
    warn = client.post("/early_warning", json={"customers": records, "min_level": "green"},
                       headers=AUTH).json()["warnings"]
    queue = client.post("/prioritize", json={"customers": records, "capacity": len(records)},
                        headers=AUTH).json()["queue"]
    assert len(score) == len(warn) == len(records) and queue
    for got in (score, warn, queue):
        for x in got:
            want = by_id.loc[x["customer_id"]]
            assert x["recommended_action"] == want["recommended_action"]
            assert x["decision_basis"] == want["decision_basis"]
            assert x["net_benefit"] == pytest.approx(want["net_benefit"], abs=1e-9)
            assert x["action_reasons"] == want["action_reasons"]
            assert x["action_reasons_zh"] == want["action_reasons_zh"]
            for a, nums in x["actions"].items():
                assert nums["basis"] == want[f"basis_{a}"]
                net = want[f"net_{a}"]
                assert nums["considered"] == (not np.isnan(net))
                if nums["considered"]:
                    assert nums["net_benefit"] == pytest.approx(net, abs=1e-9)
                for lab, e in nums["effects"].items():
                    w = want[f"effect_{a}_{lab}"]
                    assert (e is None) == np.isnan(w)
                    if e is not None:
                        assert e["estimate"] == pytest.approx(w, abs=1e-9)
    # Both bases decided someone, and learned effects carry their 95% interval.
    assert set(dec["decision_basis"].astype(str)) == {"learned_uplift", "constants"}
    r = next(x for x in score if x["actions"]["payment_reminder"]["considered"])
    eff = r["actions"]["payment_reminder"]["effects"]["default_12m"]
    assert eff["lo"] <= eff["estimate"] <= eff["hi"]
    assert r["actions"]["restructuring_offer"]["basis"] == "constants"
    # The queue is the batch queue, in its order.
    expected = strategy.outreach_queue(dec, len(records), batch["cfg"])
    assert [e["customer_id"] for e in queue] == expected["customer_id"].tolist()
    assert (dec["recommended_action"] == "none").any()


def test_score_single_customer_and_k_reasons(client, records):
    r = client.post("/score", json={"customers": records[:1], "k_reasons": 1}, headers=AUTH)
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["as_of"] == records[0]["as_of"]
    (full,) = client.post("/score", json={"customers": records[:1], "k_reasons": 3},
                          headers=AUTH).json()["results"]
    for m in MODELS:  # k=1 keeps the first reason of each side, and only that one
        for side in ("up", "down"):
            assert res["reasons"][m][side] == full["reasons"][m][side][:1], (m, side)
        assert all(x["text_en"] and x["text_zh"] for x in full["reasons"][m]["up"])
    n_full = sum(len(full["reasons"][m][side]) for m in MODELS for side in ("up", "down"))
    n_one = sum(len(res["reasons"][m][side]) for m in MODELS for side in ("up", "down"))
    assert 0 < n_one < n_full  # there were reasons to cut
    assert 0.0 <= res["pd_12m"] <= 1.0


def test_hard_data_rules_are_422_and_soft_ones_data_flags(client, records):
    # Historical snapshots stay scorable (as_of_old is a flag, not a refusal).
    r = client.post("/score", json={"customers": records[:2]}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert all("as_of_old" in x["data_flags"] for x in r.json()["results"])
    stale = {**records[0], "bureau_score_avg_12m": None}
    r = client.post("/score", json={"customers": [stale]}, headers=AUTH)
    assert r.status_code == 200 and "stale_bureau" in r.json()["results"][0]["data_flags"]
    impossible = {**records[1], "dpd_current": 60, "max_dpd_3m": 0}
    future = {**records[2], "as_of": "2099-12-31"}
    for bad, rule in ((impossible, "dpd_current_above_max_dpd_3m"), (future, "as_of_future")):
        for route in ("/score", "/predict", "/early_warning"):
            r = client.post(route, json={"customers": [records[3], bad]}, headers=AUTH)
            assert r.status_code == 422, (route, r.text)
            assert rule in r.json()["error"]
            assert str(bad["customer_id"]) in r.json()["error"]


def test_predict_gives_probabilities_only_equal_to_batch(client, records, batch,
                                                         service_env):
    r = client.post("/predict", json={"customers": records}, headers=AUTH)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    for col in SCORE_COLUMNS.values():
        assert [x["probabilities"][col] for x in res] == batch["scored"][col].tolist()
    one = client.post("/predict", json={"customers": records[:2], "models": ["default_risk"]},
                      headers=AUTH).json()
    assert one["model_versions"] == {"default_risk": "1"}
    assert [list(x["probabilities"]) for x in one["results"]] == [["pd_12m"], ["pd_12m"]]
    last = json.loads(service_env["audit"].read_text().splitlines()[-1])
    assert last["endpoint"] == "predict" and last["scores"]["p_churn_6m"] is None


def test_early_warning_returns_only_levels_at_or_above(client, records, batch):
    r = client.post("/early_warning", json={"customers": records, "min_level": "orange"},
                    headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    dec = batch["decisions"]
    expected = dec[dec["warning_level"].isin(["orange", "red"])]
    got = body["warnings"]
    assert sorted(w["customer_id"] for w in got) == sorted(expected["customer_id"])
    assert body["n_customers"] == len(records) and len(got) > 0
    # Highest level first, then the rank inside the level.
    keys = [(-strategy.LEVELS.index(w["warning_level"]), w["warning_rank"]) for w in got]
    assert keys == sorted(keys)
    # ... which is the batch order of the same customers (strategy.early_warnings).
    order = strategy.early_warnings(dec, "orange")
    assert [w["customer_id"] for w in got] == dec["customer_id"].iloc[order].tolist()
    for w in got:
        assert w["warning_reasons"] and w["warning_reasons_zh"]
        assert w["warning_reasons"][0].startswith(w["warning_level"])
    green = client.post("/early_warning", json={"customers": records, "min_level": "green"},
                        headers=AUTH).json()
    assert len(green["warnings"]) == len(records)


def test_prioritize_equals_the_batch_queue(client, records, batch):
    r = client.post("/prioritize", json={"customers": records, "capacity": 7}, headers=AUTH)
    assert r.status_code == 200, r.text
    q = r.json()["queue"]
    expected = strategy.outreach_queue(batch["decisions"], 7, batch["cfg"])
    assert [e["customer_id"] for e in q] == expected["customer_id"].tolist()
    assert [e["queue_rank"] for e in q] == list(range(1, len(q) + 1))
    assert [e["net_benefit"] for e in q] == expected["net_benefit"].tolist()
    assert all(e["recommended_action"] != "none" and e["action_reasons"] for e in q)


def test_explain_gives_every_feature_and_adds_up(client, records, batch):
    r = client.post("/explain", json={"customer": records[0]}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == records[0]["customer_id"]
    for m in MODELS:
        e = body["explanations"][m]
        assert sorted(c["feature"] for c in e["contributions"]) == sorted(FEATURE_NAMES)
        total = e["bias"] + sum(c["contribution"] for c in e["contributions"])
        assert total == pytest.approx(e["raw_margin"], abs=1e-9)  # TreeSHAP is additive
        assert e["probability"] == batch["scored"][SCORE_COLUMNS[m]].iloc[0]
        mags = [abs(c["contribution"]) for c in e["contributions"]]
        assert mags == sorted(mags, reverse=True)
    one = client.post("/explain", json={"customer": records[0], "models": ["churn"]},
                      headers=AUTH).json()
    assert list(one["explanations"]) == ["churn"]
    # The decision with its numbers comes with the explanation (the customer page's JSON).
    want = batch["decisions"].set_index("customer_id").loc[records[0]["customer_id"]]
    got = body["decision"]
    assert got["recommended_action"] == want["recommended_action"]
    assert got["net_benefit"] == pytest.approx(want["net_benefit"], abs=1e-9)
    assert got["warning_level"] == want["warning_level"]
    assert got["action_reasons_zh"] == want["action_reasons_zh"]
    assert set(got["actions"]) == set(strategy.ACTIONS)


def test_metadata_names_models_versions_features_and_thresholds(client):
    r = client.get("/metadata", headers=AUTH)
    assert r.status_code == 200
    meta = r.json()
    for m in MODELS:
        info = meta["models"][m]
        assert info["version"] == "1" and info["run_id"] and info["registered_name"]
        assert info["source"].startswith("folder") and info["champion"] is True
        assert "oot_auc" in info["oot_metrics"]
    assert [f["name"] for f in meta["feature_spec"]["features"]] == list(FEATURE_NAMES)
    assert meta["strategy"]["risk_grades"][0]["grade"] == "A"
    assert meta["strategy"]["warning_levels"]["red"]["pd_min"] > 0
    assert meta["limits"]["max_batch"] == MAX_BATCH
    # Which basis decides each action, and the decision gates' records (JSON: NaN as null).
    assert meta["decisions"]["basis"] == {a: "learned_uplift" if a in DECIDING else "constants"
                                          for a in strategy.ACTIONS}
    assert set(meta["decisions"]["uplift_models"]) == set(strategy.ACTIONS)
    assert client.get("/metadata").status_code == 401


def test_health_and_openapi_are_open(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
    for path in ("/score", "/predict", "/early_warning", "/prioritize", "/explain"):
        assert path in spec["paths"]
    schemas = json.dumps(spec["components"])
    assert "CustomerSnapshot" in schemas and "northeast" in schemas


def test_metrics_need_a_token(client):
    # The authorised 200 needs a real server: test_real_bentoml_serve.
    r = client.get("/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"})
    assert wrong.status_code == 401


def test_openapi_documents_metadata_auth_and_real_error_bodies(client):
    """The served document is the contract kept: /metadata, bearer auth, guard errors."""
    spec = client.get("/docs.json").json()
    meta = spec["paths"]["/metadata"]["get"]
    assert meta["security"] == [{"bearerAuth": []}] and "401" in meta["responses"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/score", "/explain"):
        op = spec["paths"][path]["post"]
        assert {"400", "401", "413", "415", "422"} <= set(op["responses"]), path
    assert "security" not in spec["paths"]["/livez"]["get"]
    detail = spec["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]
    bad = client.post("/score", json={"customers": []}, headers=AUTH)
    assert bad.status_code == 400 and detail["type"] == "array"
    assert isinstance(bad.json()["detail"], list)
    assert set(detail["items"]["required"]) <= set(bad.json()["detail"][0])


def test_audit_trail_has_versions_hash_scores_and_no_snapshot_values(client, records,
                                                                     service_env):
    from serving.schemas import input_hash

    audit = service_env["audit"]
    before = audit.read_text().count("\n") if audit.exists() else 0
    r = client.post("/score", json={"customers": records[:3]}, headers=AUTH)
    assert r.status_code == 200
    lines = audit.read_text().splitlines()[before:]
    assert len(lines) == 3
    res = r.json()["results"]
    for line, rec, out in zip(lines, records[:3], res, strict=True):
        entry = json.loads(line)
        assert entry["endpoint"] == "score" and entry["customer_id"] == rec["customer_id"]
        assert entry["input_hash"] == input_hash({**rec, "as_of": pd.Timestamp(
            rec["as_of"]).date()})
        assert entry["model_versions"] == r.json()["model_versions"]
        assert entry["scores"]["pd_12m"] == out["pd_12m"]
        assert entry["decision"]["warning_level"] == out["warning_level"]
        up = entry["reasons"]["default_risk"]["up"]
        assert [f for f, _ in up] == [x["feature"] for x in out["reasons"]["default_risk"]["up"]]
        # No snapshot field is written as a key, and no reason text (which quotes values).
        for field in SNAPSHOT_FIELDS[1:]:
            assert f'"{field}":' not in line
        assert "text_en" not in line and "text_zh" not in line
    assert len({json.loads(x)["request_id"] for x in lines}) == 1


def test_the_service_class_directly(service_env, service_module, records, batch):
    from serving.schemas import PrioritizeRequest, ScoreRequest

    svc = service_module.PostloanService()
    # Strict models: JSON in (dates as text), as over HTTP.
    out = svc.score(ScoreRequest.model_validate_json(json.dumps({"customers": records[:5]})))
    assert [x.pd_12m for x in out.results] == batch["scored"]["pd_12m"].head(5).tolist()
    q = svc.prioritize(PrioritizeRequest.model_validate_json(
        json.dumps({"customers": records, "capacity": 3}))).queue
    # The batch decisions say whom to contact; the queue is the 3 with most benefit.
    dec = batch["decisions"]
    due = dec[(dec["net_benefit"] > 0) & (dec["recommended_action"] != strategy.NO_ACTION)]
    assert len(due) > 3  # more customers to contact than capacity: the cut is tested
    top = due.sort_values(["net_benefit", "customer_id"], ascending=[False, True]).head(3)
    assert [e.customer_id for e in q] == top["customer_id"].tolist()
    assert [e.net_benefit for e in q] == top["net_benefit"].tolist()
    assert [e.queue_rank for e in q] == [1, 2, 3]
    assert svc.metadata()["models"]["churn"]["version"] == "1"


# ---------------------------------------------------------------------------- auth
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "},
])
def test_missing_or_wrong_token_is_401(client, records, headers):
    for path, body in (("/score", {"customers": records[:1]}),
                       ("/explain", {"customer": records[0]})):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "token" in r.json()["error"]


def test_every_configured_token_works_and_invalid_body_needs_auth_first(client, records):
    other = {"Authorization": "Bearer another-token-abcdefghij"}
    assert client.post("/score", json={"customers": records[:1]}, headers=other
                       ).status_code == 200
    # An unauthenticated caller learns nothing about the body's shape.
    assert client.post("/score", content=b"{not json", headers={}).status_code == 401


# ---------------------------------------------------------------------------- bad input
def _with(records: list[dict], **changes) -> dict:
    rec = dict(records[0])
    for k, v in changes.items():
        if v is _DROP:
            rec.pop(k)
        else:
            rec[k] = v
    return {"customers": [rec]}


_DROP = object()

BAD_CUSTOMER = [
    ("string_for_number", {"age": "45"}, ["customers", 0, "age"], "float_type"),
    ("bool_for_number", {"age": True}, ["customers", 0, "age"], "float_type"),
    ("float_for_id", {"customer_id": 5.0}, ["customers", 0, "customer_id"], "int_type"),
    ("negative_id", {"customer_id": -1}, ["customers", 0, "customer_id"], "greater_than_equal"),
    ("out_of_range", {"age": 500.0}, ["customers", 0, "age"], "less_than_equal"),
    ("below_range", {"bureau_score": 12.0}, ["customers", 0, "bureau_score"],
     "greater_than_equal"),
    ("null_category", {"main_product": None}, ["customers", 0, "main_product"], "string_type"),
    ("empty_category", {"region": ""}, ["customers", 0, "region"], "string_too_short"),
    ("flag_not_0_1", {"has_card": 0.5}, ["customers", 0, "has_card"], "value_error"),
    ("null_balance", {"total_balance": None}, ["customers", 0, "total_balance"], "float_type"),
    ("extra_field", {"full_name": "Li Lei"}, ["customers", 0, "full_name"], "extra_forbidden"),
    ("missing_field", {"dpd_current": _DROP}, ["customers", 0, "dpd_current"], "missing"),
    ("bad_date", {"as_of": "30/06/2024"}, ["customers", 0, "as_of"], "date_from_datetime_parsing"),
]


@pytest.mark.parametrize("name,change,loc,kind", BAD_CUSTOMER, ids=[b[0] for b in BAD_CUSTOMER])
def test_bad_customer_field_is_400_with_path_and_reason(client, records, name, change, loc,
                                                        kind):
    r = client.post("/score", json=_with(records, **change), headers=AUTH)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert any(d["loc"] == loc and d["type"].startswith(kind.split("_from")[0])
               for d in detail), detail
    assert all(d["msg"] for d in detail)


@pytest.mark.parametrize("raw,loc", [
    (b'{"customers": [{"age": NaN}]}', ["customers", 0, "age"]),
    (b'{"customers": [{"age": Infinity}]}', ["customers", 0, "age"]),
    (b'{"customers": [{"age": -Infinity}]}', ["customers", 0, "age"]),
])
def test_nan_and_infinity_are_refused(client, records, raw, loc):
    # Put the literal into an otherwise valid record.
    body = json.dumps({"customers": [{**records[0], "age": "PLACEHOLDER"}]})
    literal = raw.split(b'"age": ')[1].split(b"}")[0].decode()
    body = body.replace('"PLACEHOLDER"', literal)
    r = client.post("/score", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert any(d["loc"] == loc and d["type"] == "finite_number" for d in r.json()["detail"])


@pytest.mark.parametrize("path,body,loc", [
    ("/score", {"customers": []}, ["customers"]),
    ("/score", {}, []),  # neither customers nor customer_ids
    ("/score", {"customers": "all"}, ["customers"]),
    ("/score", {"customers": None}, []),
    ("/score", {"customers": [], "pickle": True}, ["pickle"]),
    ("/score", {"customers": [1]}, ["customers", 0]),
    ("/early_warning", {"customers": [], "min_level": "purple"}, ["min_level"]),
    ("/prioritize", {"customers": []}, ["capacity"]),
    ("/prioritize", {"customers": [], "capacity": 0}, ["capacity"]),
    ("/prioritize", {"customers": [], "capacity": "10"}, ["capacity"]),
    ("/explain", {"customers": []}, ["customers"]),
    ("/explain", {"customer": {}, "models": ["fraud"]}, ["models", 0]),
])
def test_bad_request_shape_is_400(client, path, body, loc):
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert any(d["loc"] == loc for d in r.json()["detail"]), r.json()


def test_every_snapshot_field_has_plausibility_bounds():
    from serving.schemas import NUMERIC_BOUNDS

    assert set(NUMERIC_BOUNDS) == set(NUMERIC_FIELDS)


def test_k_reasons_is_bounded(client, records):
    r = client.post("/score", json={"customers": records[:1], "k_reasons": 0}, headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["k_reasons"]


def test_batch_limit_and_duplicates(client, records):
    over = [{**records[i % len(records)], "customer_id": 10_000_000 + i}
            for i in range(MAX_BATCH + 1)]
    r = client.post("/score", json={"customers": over}, headers=AUTH)
    assert r.status_code == 400
    (d,) = r.json()["detail"]
    assert d["loc"] == ["customers"] and f"limit of {MAX_BATCH}" in d["msg"]
    assert client.post("/score", json={"customers": over[:MAX_BATCH]}, headers=AUTH
                       ).status_code == 200
    dup = client.post("/score", json={"customers": [records[0], records[1], records[0]]},
                      headers=AUTH)
    assert dup.status_code == 400 and "appears twice" in dup.json()["detail"][0]["msg"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400(client, body):
    r = client.post("/score", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("ctype", ["application/vnd.bentoml+pickle", "multipart/form-data",
                                   "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_types_are_415(client, ctype):
    r = client.post("/score", content=b"\x80\x04K\x01.", headers={**AUTH, "Content-Type": ctype})
    assert r.status_code == 415 and "application/json" in r.json()["error"]


def test_oversized_body_is_413(client):
    r = client.post("/score", content=b" " * (70_000 + 16_384 * MAX_BATCH),
                    headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_unknown_category_is_scored_as_missing_and_flagged(client, records):
    body = {"customers": [{**records[0], "region": "atlantis"}, records[1]]}
    r = client.post("/score", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["unknown_categories"] == ["region=atlantis"]
    assert res[1]["unknown_categories"] == []
    missing = client.post("/explain", json={"customer": {**records[0], "region": "atlantis"}},
                          headers=AUTH).json()
    region = [c for c in missing["explanations"]["default_risk"]["contributions"]
              if c["feature"] == "region"]
    assert region[0]["value"] is None  # the region code is missing, not a guess
    p = client.post("/predict", json=body, headers=AUTH).json()["results"]
    assert p[0]["unknown_categories"] == ["region=atlantis"]


def test_wrong_method_and_unknown_path(client):
    assert client.get("/score", headers=AUTH).status_code == 405
    assert client.post("/nope", json={}, headers=AUTH).status_code == 404
    assert client.post("/nope", json={}).status_code == 401  # default deny


def test_rejections_log_one_short_line_without_the_body(client, records, caplog):
    secret = "atlantis-SENTINEL-9731"
    with caplog.at_level("INFO"):
        r = client.post("/score", json=_with(records, age=secret), headers=AUTH)
    assert r.status_code == 400
    assert all(secret not in rec.getMessage() and not rec.exc_info for rec in caplog.records)
    lines = [rec.getMessage() for rec in caplog.records if "validation error" in
             rec.getMessage()]
    assert lines and "customers.0.age (float_type)" in lines[0]
    assert all(len(m) < 400 for m in lines)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=hs.sampled_from(SNAPSHOT_FIELDS),
       value=hs.one_of(hs.none(), hs.booleans(), hs.integers(-10**20, 10**20),
                       hs.floats(allow_nan=False, allow_infinity=False),
                       hs.text(max_size=20), hs.lists(hs.integers(), max_size=2),
                       hs.dictionaries(hs.text(max_size=3), hs.integers(), max_size=2)))
def test_any_single_field_corruption_is_200_or_400_never_5xx(client, records, field, value):
    r = client.post("/score", json=_with(records, **{field: value}), headers=AUTH)
    # 422 only for a well-formed record that breaks a hard data-quality rule (an
    # impossible DPD or count combination, an as_of in the future), or names a product
    # the strategy has no LGD for (categories are a book's own text since issue 12).
    error = r.json().get("error", "") if r.status_code == 422 else ""
    refused = "data-quality rule" in error or "without an LGD in the strategy config" in error
    assert r.status_code in (200, 400) or refused, (field, value, r.status_code, r.text[:300])


# ---------------------------------------------------------------------------- start-up
def test_refuses_to_start_without_tokens_unless_insecure_local(service_env, service_module,
                                                                monkeypatch):
    from serving.logs import ServiceStartError

    monkeypatch.delenv("POSTLOAN_API_TOKENS")
    with pytest.raises(ServiceStartError, match="POSTLOAN_API_TOKENS"):
        service_module.PostloanService()
    monkeypatch.setenv("POSTLOAN_API_TOKENS", "short")
    with pytest.raises(ServiceStartError, match="shorter than 16"):
        service_module.PostloanService()
    monkeypatch.delenv("POSTLOAN_API_TOKENS")
    monkeypatch.setenv("POSTLOAN_INSECURE_LOCAL", "1")
    svc = service_module.PostloanService()
    assert svc.config.insecure_local and svc.metadata()["auth"].startswith("none")


@pytest.mark.parametrize("env,needle", [
    ({"POSTLOAN_MAX_BATCH": "0"}, "POSTLOAN_MAX_BATCH"),
    ({"POSTLOAN_MAX_BATCH": "lots"}, "not an integer"),
    ({"POSTLOAN_MODEL_DIR": "/nonexistent/models"}, "not a folder"),
    ({"POSTLOAN_STRATEGY_CONFIG": "/nonexistent/strategy.yaml"}, "no such file"),
])
def test_bad_configuration_stops_start_up(service_env, service_module, monkeypatch, env,
                                          needle):
    from serving.logs import ServiceStartError

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ServiceStartError, match=needle):
        service_module.PostloanService()


def test_missing_or_unloadable_model_stops_start_up(service_env, service_module, champions,
                                                    monkeypatch, tmp_path):
    from serving.logs import ServiceStartError

    monkeypatch.setenv("POSTLOAN_MODEL_DIR", str(tmp_path))
    with pytest.raises(ServiceStartError, match="no bundle for model 'default_risk'"):
        service_module.PostloanService()
    bad = tmp_path / "models"
    for m in MODELS:
        src = champions["models"] / m / "v1"
        dst = bad / m / "v1"
        dst.mkdir(parents=True)
        for f in src.iterdir():
            (dst / f.name).write_bytes(f.read_bytes())
    (bad / "churn" / "v1" / "model.txt").write_text("tree\ngarbage")
    monkeypatch.setenv("POSTLOAN_MODEL_DIR", str(bad))
    with pytest.raises(ServiceStartError, match="cannot be loaded"):
        service_module.PostloanService()


def test_an_uplift_model_on_other_features_stops_start_up(service_env, service_module,
                                                         champions, monkeypatch, tmp_path):
    """An uplift champion that does not match the snapshot's features is a start-up
    error naming the model, not a 500 at the first request."""
    import shutil

    from serving.logs import ServiceStartError

    models = tmp_path / "models"
    shutil.copytree(champions["models"], models)
    spec_file = models / "uplift_retention_offer" / "v1" / "feature_spec.json"
    spec = json.loads(spec_file.read_text())
    spec["features"] = spec["features"][:-1]
    spec_file.write_text(json.dumps(spec))
    monkeypatch.setenv("POSTLOAN_MODEL_DIR", str(models))
    with pytest.raises(ServiceStartError, match="uplift_retention_offer.*other features"):
        service_module.PostloanService()


def test_champions_from_the_registry_by_alias(service_env, service_module, champions,
                                              monkeypatch):
    from serving.logs import ServiceStartError

    monkeypatch.delenv("POSTLOAN_MODEL_DIR")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champions["uri"])
    svc = service_module.PostloanService()
    meta = svc.metadata()["models"]
    assert {m: i["version"] for m, i in meta.items()} == dict.fromkeys(MODELS, "1")
    assert all(i["alias"] == "champion" and i["source"].startswith("registry")
               and i["champion"] for i in meta.values())
    monkeypatch.setenv("POSTLOAN_MODEL_ALIAS", "no-such-alias")
    with pytest.raises(ServiceStartError, match="no 'no-such-alias' version"):
        service_module.PostloanService()


def test_launcher_checks_before_serving(champions, tmp_path):
    env = child_env()
    bad = subprocess.run([sys.executable, "-m", "serving", "--check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "POSTLOAN_API_TOKENS" in bad.stderr
    env["POSTLOAN_MODEL_DIR"] = str(champions["models"])
    ok = subprocess.run([sys.executable, "-m", "serving", "--check", "--insecure-local"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "default_risk v1" in ok.stderr


# ---------------------------------------------------------------------------- real server
def test_real_bentoml_serve(champions, records, batch, tmp_path):
    log = tmp_path / "serve.log"
    server = ServiceProcess({"POSTLOAN_MODEL_DIR": str(champions["models"]),
                             "POSTLOAN_API_TOKENS": TOKEN,
                             "POSTLOAN_AUDIT_LOG": str(tmp_path / "audit.jsonl")}, log=log)
    port, url = server.port, server.url
    with server:
        server.wait_ready(timeout=90)
        assert f"listening on http://127.0.0.1:{port}" in log.read_text()  # loopback default
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/score", json={"customers": records[:1]}).status_code == 401
            r = c.post("/score", json={"customers": records}, headers=AUTH)
            assert r.status_code == 200, r.text
            got = [x["pd_12m"] for x in r.json()["results"]]
            assert got == batch["scored"]["pd_12m"].tolist()
            bad = c.post("/score", json=_with(records, age="old"), headers=AUTH)
            assert bad.status_code == 400
            assert c.post("/score", content=b"\x80\x04K\x01.", headers={
                **AUTH, "Content-Type": "application/vnd.bentoml+pickle"}).status_code == 415
            assert c.get("/metadata", headers=AUTH).json()["limits"]["max_batch"] == 1000
            assert c.get("/metrics").status_code == 401
            metrics = c.get("/metrics", headers=AUTH)
            assert metrics.status_code == 200
            assert ('bentoml_service_request_total{endpoint="/score",http_response_code="200"'
                    in metrics.text)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    rejected = [x for x in text.splitlines() if "400 on /score" in x]
    assert rejected and "customers.0.age (float_type)" in rejected[0]
    assert '"old"' not in text  # the rejected body is not logged
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == len(records)


def test_real_bentoml_serve_stops_when_it_cannot_start(tmp_path):
    log = tmp_path / "serve.log"
    with ServiceProcess(log=log) as server:
        server.proc.wait(timeout=90)  # exits by itself instead of restarting the worker forever
    text = log.read_text()
    assert "postloan service cannot start: no API token configured" in text
    assert text.count("Traceback") == 0, text[-3000:]


def test_service_process_reports_a_server_that_exits(tmp_path):
    from serving.process import ServiceProcessError

    with ServiceProcess(log=tmp_path / "serve.log") as server:  # no token: refuses to start
        with pytest.raises(ServiceProcessError, match="no API token configured"):
            server.wait_ready(timeout=90)
        assert server.proc.poll() is not None  # it exited by itself, before stop()


# ---------------------------------------------------------------------------- by customer id
def test_score_by_ids_equals_the_full_record_request(client, records):
    ids = [r["customer_id"] for r in records[:3]]
    by_id = client.post("/score", json={"customer_ids": ids}, headers=AUTH)
    full = client.post("/score", json={"customers": records[:3]}, headers=AUTH)
    assert by_id.status_code == 200 == full.status_code, by_id.text
    body = by_id.json()
    assert body["results"] == full.json()["results"]
    assert [r["customer_id"] for r in body["results"]] == ids
    snap = body["snapshot"]
    assert snap["as_of"] == records[0]["as_of"] and snap["book_hash"] == "book-hash"
    assert snap["stale"] is (snap["age_days"] > snap["max_age_days"]) and snap["stale"]
    assert body["unknown_customer_ids"] == []
    assert "snapshot" not in full.json() or full.json()["snapshot"] is None


def test_unknown_ids_are_reported_per_id_not_a_failure(client, records):
    known = records[0]["customer_id"]
    r = client.post("/score", json={"customer_ids": [known, 987654321]}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert [x["customer_id"] for x in r.json()["results"]] == [known]
    assert r.json()["unknown_customer_ids"] == [987654321]
    r = client.post("/early_warning", json={"customer_ids": [987654321]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["warnings"] == [] and r.json()[
        "unknown_customer_ids"] == [987654321]


@pytest.mark.parametrize("path,extra", [("/early_warning", {"min_level": "green"}),
                                        ("/prioritize", {"capacity": 5}), ("/predict", {})])
def test_every_batch_endpoint_answers_by_id_like_by_record(client, records, path, extra):
    ids = [r["customer_id"] for r in records[:20]]
    by_id = client.post(path, json={"customer_ids": ids, **extra}, headers=AUTH)
    full = client.post(path, json={"customers": records[:20], **extra}, headers=AUTH)
    assert by_id.status_code == 200 == full.status_code, by_id.text
    a, b = by_id.json(), full.json()
    for k in ("snapshot", "unknown_customer_ids"):
        a.pop(k), b.pop(k, None)
    assert a == b and a != {}


def test_explain_by_id_and_unknown_id_is_404(client, records):
    cid = records[1]["customer_id"]
    a = client.post("/explain", json={"customer_id": cid}, headers=AUTH)
    b = client.post("/explain", json={"customer": records[1]}, headers=AUTH)
    assert a.status_code == 200 == b.status_code, a.text
    assert a.json()["explanations"] == b.json()["explanations"]
    assert a.json()["snapshot"]["book_hash"] == "book-hash"
    r = client.post("/explain", json={"customer_id": 987654321}, headers=AUTH)
    assert r.status_code == 404 and "987654321" in r.json()["error"]


@pytest.mark.parametrize("body", [
    {"customer_ids": []}, {"customer_ids": [1, 1]}, {"customer_ids": ["1"]},
    {"customer_ids": [-1]}, {}, {"customer_ids": list(range(MAX_BATCH + 1))}])
def test_bad_id_requests_are_400(client, records, body):
    r = client.post("/score", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    both = client.post("/score", json={"customers": records[:1],
                                       "customer_ids": [records[0]["customer_id"]]},
                       headers=AUTH)
    assert both.status_code == 400 and "not both" in both.text
