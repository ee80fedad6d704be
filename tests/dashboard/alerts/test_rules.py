"""Rule validation, the decisions themselves, and the alerts section of the config."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from dashboard.alerts.rules import DEFAULT_RULES, Rule, Scope, alert_text, count_fires, ratio_fires
from dashboard.config import ConfigError, complete


def test_each_kind_needs_its_fields_and_gets_its_fixed_scope() -> None:
    assert Rule(id="a", kind="same_track", count=3, window_min=10).scope == "camera"
    assert Rule(id="b", kind="team_ratio", ratio_pct=30, min_scored=5).scope == "team"
    with pytest.raises(ValidationError, match="needs count"):
        Rule(id="c", kind="rate", scope="zone", window_min=10)
    with pytest.raises(ValidationError, match="scope camera or zone"):
        Rule(id="d", kind="rate", count=3, window_min=10)
    with pytest.raises(ValidationError, match="scoped by team"):
        Rule(id="e", kind="team_ratio", scope="zone", ratio_pct=30, min_scored=5)
    with pytest.raises(ValidationError, match="not a valid id"):
        Rule(id="no spaces", kind="same_track", count=3, window_min=10)


def test_thresholds() -> None:
    rule = Rule(id="r", kind="rate", scope="camera", count=3, window_min=10)
    assert [count_fires(rule, n) for n in (2, 3, 4)] == [False, True, True]
    ratio = Rule(id="t", kind="team_ratio", ratio_pct=30, min_scored=10)
    assert not ratio_fires(ratio, 9, 9)  # too few scored lifts
    assert not ratio_fires(ratio, 10, 3)  # exactly 30 % is not above
    assert ratio_fires(ratio, 10, 4)


def test_text_names_the_place_in_site_time_never_a_track() -> None:
    rule = DEFAULT_RULES[0]
    scope = Scope("dc1", "camera", camera="cam3", zone="picking")
    at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    text = alert_text(rule, scope, 4, 3.0, at, "Europe/Berlin")
    assert text == (
        "Risky lifting at dc1: camera cam3 (zone picking) — one person made 3 rounded-back "
        "lifts within 10 min, at 10:00."
    )
    team = Scope("dc1", "team", team="blue", shift="early", day=date(2026, 3, 2))
    assert team.key == "team:blue:2026-03-02:early"


def test_alerts_config_defaults_env_secrets_and_errors(tmp_path: Path) -> None:
    cfg = complete({}, None, env={})
    assert [r.id for r in cfg.alerts.rules] == [r.id for r in DEFAULT_RULES]
    assert cfg.alerts.webhook is None and cfg.alerts.email is None
    data = {
        "alerts": {"email": {"host": "smtp", "from": "a@b.c", "to": ["s@b.c"], "ca_file": "ca.pem"}}
    }
    env = {"LIFTWATCH_SMTP_PASSWORD": "pw", "LIFTWATCH_ALERT_WEBHOOK_URL": "https://h/x"}
    cfg = complete(data, tmp_path / "dash.yaml", env=env)
    assert cfg.alerts.email is not None and cfg.alerts.email.password is not None
    assert cfg.alerts.email.password.get_secret_value() == "pw"
    assert cfg.alerts.email.ca_file == tmp_path / "ca.pem"
    assert cfg.alerts.webhook is not None and cfg.alerts.webhook.url == "https://h/x"
    twice = {"alerts": {"rules": [DEFAULT_RULES[0].model_dump()] * 2}}
    with pytest.raises(ConfigError, match="listed twice"):
        complete(twice, None, env={})
    with pytest.raises(ConfigError, match=r"alerts\.email\.to"):
        complete({"alerts": {"email": {"host": "smtp", "from": "a@b.c", "to": []}}}, None, env={})
