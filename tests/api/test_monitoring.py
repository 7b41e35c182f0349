"""Alerting rules, the Grafana dashboard and the systemd unit, checked by their own tools."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.bus import EventBus
from services.metrics import FeedSource, Metrics, PortfolioSource, RiskSource

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "resources" / "monitoring"
RULES = MONITORING / "alerting_rules.yml"
UNIT = REPO / "packaging" / "systemd" / "dalal-headless.service"
PROMTOOL = shutil.which("promtool")
NAME = re.compile(r"\b((?:dalal|process)_[a-z0-9_]+)\b")


def fed_metrics() -> Metrics:
    """A registry with every hook fed once, so every family shows its samples."""
    m = Metrics(version="test")
    m.watch_orders(list)
    m.watch_bus(EventBus())
    m.watch_feed(FeedSource("simulator", lambda: 1, lambda: 0.5))
    m.watch_blocked_addresses(lambda: 0)
    m.watch_components(lambda: {"feed": True})
    m.watch_disk("data", REPO)
    m.event_loop_lag.observe(0.001)
    m.order_ack_observer("paper")(0.01)
    m.order_path_observer("api")(0.01)
    m.feed_lag.labels(feed="simulator").observe(0.01)
    m.watch_risk(RiskSource(lambda: {"max_order_quantity": 2}, lambda: "ACTIVE"))
    m.watch_portfolio(PortfolioSource(list, lambda: None))
    m.watch_model_accuracy(lambda: {("m1", 3): 0.55})
    m.auth_failures.labels(reason="unknown").inc()
    m.address_blocks.inc()
    m.rate_limited.labels(cause="key_rate").inc()
    m.http_requests.labels(handler="/livez", method="GET", code="200").inc()
    m.http_duration.labels(handler="/livez").observe(0.001)
    latency, outcome = m.model_observers("m1", "3")
    latency(0.0001)
    outcome(True)
    m.model_rollbacks.labels(model="m1", reason="error_rate").inc()
    return m


def exported_names() -> set[str]:
    body, _ = fed_metrics().exposition()
    return {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines()
            if line and not line.startswith("#")}  # fmt: skip


def test_every_metric_named_in_rules_and_dashboard_is_exported() -> None:
    names = exported_names()
    assert "dalal_auth_failures_total" in names and "dalal_blocked_addresses" in names
    rules_text = RULES.read_text()
    dashboard = json.loads((MONITORING / "grafana_dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    used_in_rules = set(NAME.findall(rules_text))
    used_in_dashboard = {n for e in exprs for n in NAME.findall(e)}
    assert not used_in_rules - names, used_in_rules - names
    assert not used_in_dashboard - names, used_in_dashboard - names
    for needed in ("DalalFeedDown", "DalalFeedLagHigh", "DalalOrderLatencyHigh",
                   "DalalApiErrorRate", "DalalAuthFailureBurst", "DalalModelAccuracyDegraded",
                   "DalalModelRolledBack", "DalalProcessRestarting", "DalalDiskFilling"):
        assert f"alert: {needed}" in rules_text, needed  # fmt: skip
    assert dashboard["uid"] and all(p["datasource"] for p in dashboard["panels"])


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    assert PROMTOOL is not None
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    unit = subprocess.run([PROMTOOL, "test", "rules", "alerting_rules_test.yml"],
                          cwd=MONITORING, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_exposition_names() -> None:
    assert PROMTOOL is not None
    body, _ = fed_metrics().exposition()
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                          timeout=60)  # fmt: skip
    problems = [ln for ln in (lint.stdout + lint.stderr).decode().splitlines()
                if ln.startswith("dalal_")]  # fmt: skip
    assert problems == [], problems


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for option in ("Type=notify", "Restart=on-failure", "NoNewPrivileges=yes",
                   "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                   "StateDirectory=dalal", "LoadCredential=dalal-db-key:"):
        assert option in text, option  # fmt: skip
    dalal = Path(sys.executable).with_name("dalal")
    exe = dalal if dalal.exists() else Path("/bin/true")
    unit = tmp_path / "dalal-headless.service"
    unit.write_text(text.replace("/usr/bin/dalal", str(exe)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    messages = [ln for ln in (out.stdout + out.stderr).splitlines() if "dalal-headless" in ln]
    assert out.returncode == 0 and messages == [], out.stdout + out.stderr
