"""Reliability of the real service: fuzzing, hostile input, faults, secrets (issue 8).

Everything runs against ONE real ``bentoml serve`` subprocess on a free loopback port
(module fixture ``server``), serving the session's champions (conftest ``trained``),
with its stdout/stderr captured to a file that the last test scans for secrets.
Start-up failures use short-lived processes of their own.
"""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from serving.process import ServiceProcess, child_env, free_port  # noqa: E402

pytestmark = pytest.mark.integration

TOKEN = "reliability-token-5f1c9a7e3b2d4c6a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
MAX_BATCH = 50
BODY_LIMIT = 65_536 + 16_384 * MAX_BATCH  # serving.security: overhead + per customer
POST_PATHS = ("/score", "/predict", "/early_warning", "/prioritize", "/explain")
EXAMPLE = json.loads((ROOT / "serving" / "example_request.json").read_text())["customers"][0]
# Values that must never reach the server log (request body values, PII stand-ins).
SENTINEL_ID = 987_654_321
SENTINEL_BALANCE = 123_457.891
SENTINEL_TEXT = "🦄-sentinel-4242"


# ---------------------------------------------------------------------------- helpers
# Not passed on to the servers and launchers started here: the caller's own settings and
# registry (each test names the store it wants).
DROP = ("POSTLOAN_", "MLFLOW_TRACKING")


def _env(**extra: str) -> dict:
    return child_env(extra, drop=DROP)


def _body(path: str, customers: list[dict]) -> dict:
    """A valid body of `path` for these customers (explain takes one)."""
    if path == "/explain":
        return {"customer": customers[0]}
    if path == "/prioritize":
        return {"customers": customers, "capacity": 5}
    return {"customers": customers}


def _raw(path: str, customer_text: str) -> bytes:
    """A body of `path` around one customer given as raw JSON text."""
    if path == "/explain":
        return f'{{"customer": {customer_text}}}'.encode()
    extra = ', "capacity": 5' if path == "/prioritize" else ""
    return f'{{"customers": [{customer_text}]{extra}}}'.encode()


def _with_raw(field: str, literal: str) -> str:
    """The example customer as JSON text with `field`'s value replaced by `literal`."""
    return json.dumps({**EXAMPLE, field: "@@"}).replace('"@@"', literal)


def _assert_4xx_with_reason(r: httpx.Response, status: tuple[int, ...] = (400,)) -> dict:
    assert r.status_code in status, (r.status_code, r.text[:500])
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"]
    if r.status_code == 400:  # pydantic errors: where and why, per error
        assert body["detail"] and all(d["loc"] is not None and d["type"] and d["msg"]
                                      for d in body["detail"]), body
    return body


# ---------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def server(trained, small_book, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    log = tmp / "serve.log"
    # An online store too, so requests by id (what a fuzzer generates most easily) are
    # answered: known ids scored, unknown ones reported.
    from postloan.data import io
    from postloan.data.online import SnapshotStore
    from postloan.data.snapshot import build_snapshot, data_range

    tables = io.read_tables(small_book)
    snap = build_snapshot(tables, data_range(tables)[1] - pd.offsets.MonthEnd(6),
                          with_labels=False)
    store = f"sqlite:///{tmp / 'online.db'}"
    SnapshotStore(store).materialize(snap, "reliability")
    env = {"POSTLOAN_MODEL_DIR": str(trained["root"] / "models"), "POSTLOAN_API_TOKENS": TOKEN,
           "POSTLOAN_MAX_BATCH": str(MAX_BATCH), "POSTLOAN_AUDIT_LOG": str(tmp / "audit.jsonl"),
           "POSTLOAN_ONLINE_STORE": store}
    with ServiceProcess(env, log=log, drop=DROP) as s:
        s.wait_ready(timeout=90)
        yield {"url": s.url, "proc": s.proc, "log": log, "audit": tmp / "audit.jsonl",
               "service": s}


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server["url"], timeout=30) as c:
        yield c


def _healthy(http: httpx.Client) -> None:
    assert http.get("/readyz").status_code == 200
    r = http.post("/score", json={"customers": [EXAMPLE]}, headers=AUTH)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["results"][0]["customer_id"] == EXAMPLE["customer_id"]


# ---------------------------------------------------------------------------- 1. fuzzing
FUZZ_EXAMPLES = 50  # per POST operation and generation mode: 5 x 2 x 50 = 500 requests


def test_schemathesis_fuzzing_finds_no_5xx_and_conforming_responses(server):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import positive_data_acceptance
    from schemathesis.core.failures import Failure, FailureGroup

    schema = schemathesis.openapi.from_url(f"{server['url']}/docs.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    posts = [op for op in ops if op.method.upper() == "POST"]
    assert sorted(op.path for op in posts) == sorted(POST_PATHS)
    assert "/metadata" in {op.path for op in ops if op.method.upper() == "GET"}
    statuses: collections.Counter = collections.Counter()
    failures: list[str] = []
    timings: dict[str, float] = {}

    def check(case, response) -> None:
        statuses[(case.operation.path, response.status_code)] += 1
        assert response.status_code < 500, (case.operation.path, response.text[:500])
        # Excluded, with reason: positive_data_acceptance (ST202): the schema cannot state
        # every rule of the contract (as_of between 1990 and 2100 is a date bound JSON
        # Schema lacks; has_card/has_mortgage/has_sme/ever_90dpd must be 0 or 1, checked by
        # a validator; a customer twice), so schema-valid bodies are rightly refused with
        # a 400. Every response, 400s included, must match the served document
        # (serving/openapi.py corrects BentoML's: its 400 `detail` is a list).
        excluded = [positive_data_acceptance]
        if response.status_code == 400:
            body = response.json()
            assert isinstance(body["error"], str) and isinstance(body["detail"], list)
        try:
            case.validate_response(response, excluded_checks=excluded)
        except (FailureGroup, Failure) as e:
            errs = e.exceptions if isinstance(e, FailureGroup) else [e]
            failures.extend(f"{case.operation.path} {response.status_code}: "
                            f"{getattr(x, 'title', type(x).__name__)}" for x in errs)

    for op in ops:
        modes = ((GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if op in posts
                 else (GenerationMode.POSITIVE,))
        for mode in modes:
            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                      derandomize=True, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                check(case, case.call(base_url=server["url"], headers=AUTH, timeout=30))

            t0 = time.monotonic()
            run()
            timings[f"{op.method.upper()} {op.path} {mode.value}"] = time.monotonic() - t0

    total = sum(statuses.values())
    print(f"\nschemathesis: {total} requests, statuses "
          f"{dict(collections.Counter(s for _, s in statuses.elements()))}")
    print({k: round(v, 1) for k, v in timings.items()})
    assert total >= 500, statuses
    assert not failures, collections.Counter(failures)
    # Not only rejections: valid bodies were generated and scored on every endpoint.
    assert all(statuses[(p, 200)] > 0 for p in (*POST_PATHS, "/metadata") if p != "/explain"
               ), statuses
    # /explain: the fuzzer's easiest valid body is one small customer_id, which the store
    # does not hold (ids start at 100001): a 404 naming it is the right answer there;
    # explained 200s by id and by record are checked in tests/serving/test_serving.py.
    assert statuses[("/explain", 200)] + statuses[("/explain", 404)] > 0, statuses


# ---------------------------------------------------------------------------- 2. hostile input
HOSTILE = {
    "deep_json_list": lambda p: b"[" * 10_000 + b"]" * 10_000,
    "deep_json_object": lambda p: (b'{"customers": ' + b'{"a": ' * 10_000 + b"1"
                                   + b"}" * 10_001),
    "deep_json_in_a_field": lambda p: _raw(p, _with_raw("age", "[" * 10_000 + "]" * 10_000)),
    "1e400_raw": lambda p: _raw(p, _with_raw("total_balance", "1e400")),
    "1e400_as_id": lambda p: _raw(p, _with_raw("customer_id", "1e400")),
    "10**40_as_id": lambda p: _raw(p, _with_raw("customer_id", str(10**40))),
    "10**40_as_amount": lambda p: _raw(p, _with_raw("total_balance", str(10**40))),
    "5000_digit_number": lambda p: _raw(p, _with_raw("age", "9" * 5_000)),
    "NaN": lambda p: _raw(p, _with_raw("age", "NaN")),
    "Infinity": lambda p: _raw(p, _with_raw("bureau_score", "Infinity")),
    "-Infinity": lambda p: _raw(p, _with_raw("income_change_6m", "-Infinity")),
    "emoji_string_id": lambda p: _raw(p, _with_raw("customer_id", json.dumps(SENTINEL_TEXT))),
    "unicode_digits_id": lambda p: _raw(p, _with_raw("customer_id", '"١٢٣"')),
    "unicode_category": lambda p: _raw(p, _with_raw("region", json.dumps(SENTINEL_TEXT))),
    "lone_surrogate": lambda p: _raw(p, _with_raw("region", '"\\ud800"')),
    "invalid_utf8": lambda p: _raw(p, _with_raw("region", '"x"')).replace(b'"x"', b'"\xff\xfe"'),
    "null_bytes": lambda p: b"\x00" * 1_000,
    "top_level_array": lambda p: b"[" + _raw(p, json.dumps(EXAMPLE)) + b"]",
}


@pytest.mark.parametrize("path", POST_PATHS)
def test_hostile_bodies_are_4xx_with_a_reason(http, path):
    for name, make in HOSTILE.items():
        r = http.post(path, content=make(path), headers=JSON_AUTH)
        if name == "unicode_category":
            # A category outside the models' vocabularies is scored as missing and
            # reported (issue 12: a lender's own vocabularies), never a 5xx.
            assert r.status_code == 200, (name, r.status_code, r.text[:300])
            if path == "/score":
                assert r.json()["results"][0]["unknown_categories"], r.text[:300]
            continue
        assert r.status_code == 400, (name, r.status_code, r.text[:300])
        _assert_4xx_with_reason(r)
    if path != "/explain":  # one customer only there: duplicates cannot be sent
        r = http.post(path, json=_body(path, [EXAMPLE, {**EXAMPLE}]), headers=AUTH)
        body = _assert_4xx_with_reason(r)
        assert "appears twice" in body["detail"][0]["msg"]


@pytest.mark.parametrize("path", POST_PATHS)
def test_oversized_and_wrong_content_types_are_refused(http, path):
    # Declared length over the limit: refused before the body is read.
    big = b" " * (BODY_LIMIT + 1)
    body = _assert_4xx_with_reason(http.post(path, content=big, headers=JSON_AUTH), (413,))
    assert str(BODY_LIMIT) in body["error"]

    # Chunked (no Content-Length): read bounded, refused once over the limit.
    def chunks():
        for _ in range(BODY_LIMIT // 65_536 + 2):
            yield b" " * 65_536

    _assert_4xx_with_reason(http.post(path, content=chunks(), headers=JSON_AUTH), (413,))
    pickle = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94."
    for ctype in ("application/python-pickle", "application/vnd.bentoml+pickle",
                  "multipart/form-data", "multipart/form-data; boundary=xyz", "text/plain",
                  "application/x-www-form-urlencoded", "application/octet-stream"):
        r = http.post(path, content=pickle, headers={**AUTH, "Content-Type": ctype})
        body = _assert_4xx_with_reason(r, (415,))
        assert "application/json" in body["error"], ctype


def test_service_is_healthy_after_hostile_input(http):
    _healthy(http)
    for path in POST_PATHS:  # and every endpoint still answers a valid body
        r = http.post(path, json=_body(path, [EXAMPLE]), headers=AUTH)
        assert r.status_code == 200, (path, r.text[:300])


# ---------------------------------------------------------------------------- 3. faults
def test_killing_a_worker_under_load_recovers(server, http):
    arbiter = psutil.Process(server["proc"].pid)
    workers = [p for p in arbiter.children(recursive=True)
               if "_bentoml_impl.worker" in " ".join(p.cmdline())]
    assert workers, [p.cmdline() for p in arbiter.children(recursive=True)]
    victim = workers[0]
    outcomes: list[object] = []
    killed_at: list[float] = []

    def load() -> None:
        with httpx.Client(base_url=server["url"], timeout=20) as c:
            for i in range(100):
                if i == 20:
                    victim.send_signal(signal.SIGKILL)
                    killed_at.append(time.monotonic())
                try:
                    outcomes.append(c.post("/score", json={"customers": [EXAMPLE]},
                                           headers=AUTH).status_code)
                except httpx.HTTPError as e:
                    outcomes.append(type(e).__name__)
                    time.sleep(0.2)  # a client backs off a little on a broken connection

    t = threading.Thread(target=load)
    t.start()
    t.join(timeout=150)
    assert not t.is_alive(), "the request loop did not finish"
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    recovery = server["service"].wait_ready(timeout=30)
    _healthy(http)
    recovered = time.monotonic() - killed_at[0]
    failed = [o for o in outcomes if o != 200]
    print(f"\nworker kill: {len(outcomes)} requests, {len(failed)} failed {failed[:10]}, "
          f"ready {recovery:.1f}s after the loop, healthy {recovered:.1f}s after the kill")
    assert len(outcomes) == 100
    assert len(failed) <= 5, collections.Counter(map(str, failed))
    assert all(o == 200 or isinstance(o, str) or o in (502, 503) for o in failed), failed
    new = [p for p in arbiter.children(recursive=True)
           if "_bentoml_impl.worker" in " ".join(p.cmdline())]
    assert new and victim.pid not in {p.pid for p in new}  # restarted, not the same one


def _start_and_expect_refusal(env: dict, tmp: Path, needle: str) -> str:
    """`bentoml serve` must stop by itself, say why, and not serve anything.

    Its exit code is not checked: on BentoML 1.4.40 the arbiter, stopped by the
    refusing worker with SIGTERM (``serving.service._refuse_start``), exits 0. The
    launcher ``python -m serving`` is the entry point that exits non-zero (2), checked
    by the callers.
    """
    port = free_port()
    log = tmp / f"refused-{port}.log"
    with ServiceProcess(env, port=port, log=log, drop=DROP) as s:
        s.proc.wait(timeout=90)  # TimeoutExpired: it did not stop by itself
    text = log.read_text()
    assert needle in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    with pytest.raises(httpx.TransportError):  # nothing half-started on the port
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    return text


def test_missing_model_folder_stops_start_up(tmp_path):
    env = _env(POSTLOAN_API_TOKENS=TOKEN, POSTLOAN_MODEL_DIR=str(tmp_path / "no-models"))
    _start_and_expect_refusal(env, tmp_path, "not a folder")
    launcher = subprocess.run([sys.executable, "-m", "serving", "--port", str(free_port())],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 2 and "not a folder" in launcher.stderr
    assert "listening" not in launcher.stderr + launcher.stdout


def test_missing_mlflow_store_stops_start_up(tmp_path):
    uri = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'mlflow.db'}"
    env = _env(POSTLOAN_API_TOKENS=TOKEN, MLFLOW_TRACKING_URI=uri)
    text = _start_and_expect_refusal(env, tmp_path, "no MLflow store at")
    assert "MLFLOW_TRACKING_URI" in text
    launcher = subprocess.run([sys.executable, "-m", "serving", "--port", str(free_port())],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 2, launcher.stderr[-2000:]
    assert "no MLflow store at" in launcher.stderr, launcher.stderr[-2000:]
    assert not (tmp_path / "missing").exists()  # nothing written for a missing store


def test_locked_mlflow_store_stops_start_up(trained, tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_bytes((trained["root"] / "mlflow.db").read_bytes())
    lock = sqlite3.connect(store, isolation_level=None, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the store: nobody may read
    try:
        env = _env(POSTLOAN_API_TOKENS=TOKEN, MLFLOW_TRACKING_URI=f"sqlite:///{store}")
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "serving", "--port", str(free_port())],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "cannot start" in r.stderr and "locked" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "listening" not in r.stderr + r.stdout
    print(f"\nlocked store refused in {took:.1f}s")


# ---------------------------------------------------------------------------- 4. secrets
def test_server_log_holds_no_token_and_no_request_values(server, http):
    # Valid and invalid requests carrying distinctive values, then scan the log.
    rec = {**EXAMPLE, "customer_id": SENTINEL_ID, "total_balance": SENTINEL_BALANCE}
    assert http.post("/score", json={"customers": [rec]}, headers=AUTH).status_code == 200
    assert http.post("/explain", json={"customer": rec}, headers=AUTH).status_code == 200
    unknown = {**rec, "region": SENTINEL_TEXT}  # scored as missing, reported, not logged
    assert http.post("/score", json={"customers": [unknown]}, headers=AUTH).status_code == 200
    bad = {**rec, "age": str(SENTINEL_TEXT)}
    assert http.post("/score", json={"customers": [bad]}, headers=AUTH).status_code == 400
    assert http.post("/score", json={"customers": [rec, rec]}, headers=AUTH).status_code == 400
    wrong = {"Authorization": f"Bearer {TOKEN[:-4]}XXXX"}
    assert http.post("/score", json={"customers": [rec]}, headers=wrong).status_code == 401
    time.sleep(1.0)  # let the worker flush its log lines
    text = server["log"].read_text(encoding="utf-8", errors="replace")
    assert "400 on /score" in text and "401 on POST /score" in text  # the log is live
    for secret in (TOKEN, TOKEN[:-4], str(SENTINEL_ID), str(SENTINEL_BALANCE), SENTINEL_TEXT,
                   "🦄", "sentinel-4242", str(EXAMPLE["declared_monthly_income"])):
        assert secret not in text, f"{secret!r} found in the server log"
    # The audit trail has the surrogate id (by design) but no snapshot value.
    audit = server["audit"].read_text(encoding="utf-8")
    assert str(SENTINEL_ID) in audit and str(SENTINEL_BALANCE) not in audit
    assert TOKEN not in audit
