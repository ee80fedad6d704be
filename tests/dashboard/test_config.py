from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.config import ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dashboard.yaml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, "database_url: sqlite:///data/lw.db\norganisation: org.yaml\n"), env={}
    )
    assert cfg.database_url == f"sqlite:///{tmp_path}/data/lw.db"
    assert cfg.organisation == tmp_path / "org.yaml"
    assert cfg.mqtt.client_id == "liftwatch-dashboard"
    assert cfg.privacy.min_group_lifts == 5
    assert cfg.web.cookie_secure is True


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, "mqtt:\n  username: dash\n  password: in-file\n")
    cfg = load_config(
        path,
        env={"DATABASE_URL": "postgresql://u@db/lw", "LIFTWATCH_MQTT_PASSWORD": "from-env"},
    )
    assert cfg.database_url == "postgresql://u@db/lw"
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(cfg)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt:\n  prot: 1883\n", "mqtt.prot: unknown setting (valid: enabled, host, port"),
        ("mqtt:\n  port: 0\n", "mqtt.port: Input should be greater than or equal to 1"),
        ("database_url: mysql://x/y\n", "unsupported database 'mysql'"),
        ("mqtt:\n  shared_group: a/b\n", "mqtt.shared_group: 'a/b' is not a valid id"),
        ("privacy:\n  min_group_lifts: 0\n", "privacy.min_group_lifts"),
        ("web: [1]\n", "web: Input should be a valid dictionary"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("- 1\n", "expected a mapping of settings"),
    ],
)
def test_each_mistake_names_its_field(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", env={})
