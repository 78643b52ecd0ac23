"""PSI/CSI, verdicts, and the monitor run on a shocked and an unshocked book."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pipelines.monitor import run_monitor
from postloan.data import io
from postloan.errors import ConfigError, DataValidationError
from postloan.models.store import load_bundles_from_dir
from postloan.operations.monitoring import (
    MonitoringConfig,
    feature_drift,
    load_monitoring_config,
    psi,
    status,
)
from postloan.simulation import Shock, SimulationConfig, simulate


def test_psi_matches_a_hand_computation():
    ref = np.array([1, 1, 2, 2, 3, 3, 4, 4], dtype=float)
    cur = np.array([1, 2, 2, 2, 3, 4, 4, 4], dtype=float)
    # Quartile bins of the reference: {1}, {2}, {3}, {4}; shares .25 each vs .125,.375,.125,.375
    r = np.full(4, 0.25)
    c = np.array([0.125, 0.375, 0.125, 0.375])
    expect = np.sum((c - r) * np.log(c / r))
    assert psi(ref, cur, n_bins=4) == pytest.approx(expect, rel=1e-12)
    assert psi(ref, ref, n_bins=4) == 0.0


def test_psi_properties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20_000), rng.normal(size=20_000)
    assert psi(a, b) < 0.01
    assert psi(a, b + 0.5) > 0.1
    assert psi(a, b + 2.0) > 0.25
    # Missing values are a bin of their own: more missing is drift.
    b2 = b.copy()
    b2[:6000] = np.nan
    assert psi(a, b2) > 0.25
    assert psi(np.array([0, 0, 1, 1.0]), np.array([0, 1, 1, 1.0]), categorical=True) > 0
    with pytest.raises(DataValidationError):
        psi([], [1.0])


def test_status_thresholds_and_config(tmp_path):
    cfg = load_monitoring_config()
    assert status(0.09, cfg) == "stable" and status(0.1, cfg) == "watch"
    assert status(0.25, cfg) == "watch" and status(0.26, cfg) == "shifted"
    assert status(float("nan"), cfg) == "n/a" and status(None) == "n/a"
    bad = tmp_path / "m.yaml"
    bad.write_text("psi_watch: lots\n")
    with pytest.raises(ConfigError, match="psi_watch"):
        load_monitoring_config(bad)


def test_shipped_config_is_complete_and_a_user_file_overlays_it(tmp_path):
    shipped = load_monitoring_config()
    # Every threshold comes from the shipped YAML: the model has no defaults of its own.
    with pytest.raises(ValidationError):
        MonitoringConfig()
    user = tmp_path / "m.yaml"
    user.write_text("psi_watch: 0.05\n")
    cfg = load_monitoring_config(user)
    assert cfg.psi_watch == 0.05 and shipped.psi_watch == 0.1
    assert cfg.model_dump(exclude={"psi_watch"}) == shipped.model_dump(exclude={"psi_watch"})
    # The user's thresholds, not constants, decide the status.
    assert status(0.07, cfg) == "watch" and status(0.07, shipped) == "stable"
    user.write_text("psi_watch: 0.3\n")  # above psi_shifted: bands out of order
    with pytest.raises(ConfigError, match="psi_watch .* below psi_shifted"):
        load_monitoring_config(user)
    user.write_text("psi_wach: 0.3\n")  # a typo is named, not ignored
    with pytest.raises(ConfigError, match="psi_wach"):
        load_monitoring_config(user)
    user.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_monitoring_config(user)


def test_macro_features_judged_by_level():
    ref = pd.DataFrame({"unemployment_rate": [5.0] * 50, "x": np.arange(50.0)})
    cur = pd.DataFrame({"unemployment_rate": [7.0] * 50, "x": np.arange(50.0)})
    d = feature_drift(ref, cur, load_monitoring_config()).set_index("feature")
    assert d.loc["unemployment_rate", "status"] == "shifted"
    assert d.loc["unemployment_rate", "level_change"] == pytest.approx(2.0)
    assert d.loc["x", "status"] == "stable"


@pytest.mark.integration
@pytest.mark.parametrize("shocked", [True, False])
def test_monitor_flags_a_shock_and_not_a_quiet_month(trained, tmp_path, shocked):
    cfg = SimulationConfig(3_000, 30, 7, shock=Shock(month_index=18) if shocked else None)
    io.write_tables(simulate(cfg), tmp_path / "book")
    bundles = load_bundles_from_dir(trained["root"] / "models")
    months = cfg.month_ends()
    ref, cur = f"{months[16]:%Y-%m-%d}", f"{months[23 if shocked else 17]:%Y-%m-%d}"
    out = tmp_path / "drift.html"
    results = run_monitor(tmp_path / "book", ref, cur, bundles, load_monitoring_config(), out)
    verdicts = {r["model"]: r for r in results}
    page = out.read_text()
    assert 'id="verdicts"' in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # no network resource
    assert "default-src 'none'" in page  # and the page's CSP forbids any
    if shocked:
        r = verdicts["default_risk"]
        assert r["verdict"] == "re-validate"
        assert any("unemployment_rate" in reason for reason in r["reasons"])
    else:
        # No drift: stable scores and features. (Small test models may still be flagged
        # on their own calibration, which is not what this test is about.)
        for v in verdicts.values():
            assert v["score_psi"] < 0.1, verdicts
            assert not [r for r in v["reasons"] if not r.startswith("performance")], verdicts


def test_auc_standard_error_shrinks_with_n():
    from postloan.operations.monitoring import auc_standard_error

    small, big = auc_standard_error(0.8, 50, 950), auc_standard_error(0.8, 500, 9500)
    assert 0 < big < small < 0.05
    # By hand: q1 = .8/1.2, q2 = 2*.64/1.8;
    # var = (.16 + 49*(q1-.64) + 949*(q2-.64)) / (50*950) = 0.0014517 -> se 0.0381
    assert auc_standard_error(0.8, 50, 950) == pytest.approx(0.0381, abs=0.0002)
