"""Agent config: the example loads; every mistake stops start-up with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import PASSWORD_ENV, AgentConfig, ConfigError, load_config
from edge.lifts import LiftConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "camera.yaml"
MINIMAL = "site: dc-north\ncamera: dock-3\nsource: synthetic:1\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "camera.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env or {})
    message = str(err.value)
    assert all(line.startswith(f"{path}: ") for line in message.splitlines())
    return message


def test_the_example_config_loads() -> None:
    cfg = load_config(EXAMPLE, {PASSWORD_ENV: "from-env"})
    assert (cfg.site, cfg.camera) == ("dc-north", "dock-3")
    assert cfg.broker.client_id == "liftwatch-edge-dc-north-dock-3"
    assert cfg.broker.tls is not None and cfg.broker.tls.ca_file.is_absolute()
    assert cfg.broker.password is not None
    assert cfg.broker.password.get_secret_value() == "from-env"
    assert cfg.lift_config().max_floor_s == 5.0


def test_defaults_from_a_minimal_config(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL), {})
    assert cfg.fps == 10 and cfg.model == "movenet_multipose"
    assert (cfg.broker.host, cfg.broker.port, cfg.broker.tls) == ("localhost", 1883, None)
    assert cfg.broker.password is None
    assert cfg.outbox.max_events == 1_000_000
    assert cfg.outbox.path == tmp_path / "liftwatch-outbox.sqlite"  # beside the config file
    assert cfg.metrics_port is None and cfg.stats_interval_s == 30.0
    assert cfg.reuse_still and cfg.bystander_every == 3
    assert cfg.rescue == "yolox_nano"
    assert cfg.lift_config() == LiftConfig()


def test_an_explicit_client_id_is_kept(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL + "broker: {client_id: fixed-1}\n"), {})
    assert cfg.broker.client_id == "fixed-1"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("broker: {port: abc}\n", "broker.port: "),
        ("broker: {port: 70000}\n", "broker.port: "),
        ("broker: {pasword: x}\n", "broker.pasword: unknown setting (valid: host, port,"),
        ("broker: {tls: {cert_file: c.pem}}\n", "broker.tls.ca_file: Field required"),
        ("broker: {tls: {ca_file: ca.pem, key_file: k.pem}}\n", "broker.tls: key_file"),
        ("broker: {backoff_initial_s: 5, backoff_max_s: 1}\n", "broker: backoff_max_s"),
        ("fps: 0\n", "fps: "),
        ("outbox: {max_events: 0}\n", "outbox.max_events: "),
        ("metrics_port: -1\n", "metrics_port: "),
        ("bystander_every: 0\n", "bystander_every: "),
        ("cameras: 2\n", "cameras: unknown setting (valid: site, camera, source,"),
        ("lifts: {max_floor: 5}\n", "lifts.max_floor: unknown setting (valid: ankle_window_s,"),
        ("lifts: {shin_smooth_frames: 7.5}\n", "lifts.shin_smooth_frames: 7.5 is not a valid int"),
        ("lifts: {max_floor_s: fast}\n", "lifts.max_floor_s: 'fast' is not a valid float"),
        ("lifts: {max_floor_s: true}\n", "lifts.max_floor_s: "),
        ("lifts: 5\n", "lifts: Input should be a valid dictionary"),
    ],
)
def test_each_mistake_names_its_field(tmp_path: Path, extra: str, field: str) -> None:
    assert field in _error(tmp_path, MINIMAL + extra)


def test_names_must_fit_a_topic_level(tmp_path: Path) -> None:
    message = _error(tmp_path, "site: dc/north\ncamera: 'dock+3'\nsource: x\n")
    assert "site: 'dc/north' is not a valid id" in message
    assert "camera: 'dock+3' is not a valid id" in message


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "camera: dock-3\nfps: -1\nlifts: {a: 1, b: 2}\n")
    fields = [line.split(": ")[1] for line in message.splitlines()]
    assert sorted(fields) == ["fps", "lifts.a", "lifts.b", "site", "source"]


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    assert "line 3, column 7" in _error(tmp_path, "site: a\ncamera: [b\nsource: x\n")
    assert "duplicate key 'site'" in _error(tmp_path, MINIMAL + "site: other\n")
    assert "expected a mapping" in _error(tmp_path, "- site\n")
    assert "expected a mapping" in _error(tmp_path, "")


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml", {})


def test_password_precedence_env_then_file_then_inline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    text = MINIMAL + "broker: {password: inline, password_file: secret}\n"
    path = _write(tmp_path, text)

    def password(env: dict[str, str]) -> str:
        secret = load_config(path, env).broker.password
        assert secret is not None
        return secret.get_secret_value()

    assert password({PASSWORD_ENV: "from-env"}) == "from-env"
    assert password({}) == "from-file"  # the trailing newline is not part of it
    inline = load_config(_write(tmp_path, MINIMAL + "broker: {password: inline}\n"), {})
    assert inline.broker.password is not None
    assert inline.broker.password.get_secret_value() == "inline"
    assert "inline" not in repr(inline)  # secrets stay out of logs


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL + "broker: {password_file: gone.txt}\n")
    assert "broker.password_file: cannot read" in message
    assert str(tmp_path / "gone.txt") in message


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    text = MINIMAL + "outbox: {path: data/out.sqlite}\nbroker: {tls: {ca_file: ca.pem}}\n"
    cfg = load_config(_write(tmp_path, text), {})
    assert cfg.outbox.path == tmp_path / "data" / "out.sqlite"
    assert cfg.broker.tls is not None and cfg.broker.tls.ca_file == tmp_path / "ca.pem"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("clips/dock.mp4", "{dir}/clips/dock.mp4"),
        ("/abs/dock.mp4", "/abs/dock.mp4"),
        ("replay-fast:poses.jsonl", "replay-fast:{dir}/poses.jsonl"),
        ("synthetic:3", "synthetic:3"),
        ("rtsp://cam.local:554/s1", "rtsp://cam.local:554/s1"),
        ("0", "0"),
        ("/dev/video2", "/dev/video2"),
    ],
)
def test_file_sources_are_relative_to_the_config_file(
    tmp_path: Path, source: str, expected: str
) -> None:
    text = MINIMAL.replace("source: synthetic:1", f"source: '{source}'")
    cfg = load_config(_write(tmp_path, text), {})
    assert cfg.source == expected.format(dir=tmp_path)


def test_lift_overrides_reach_the_lift_config() -> None:
    cfg = AgentConfig(
        site="s", camera="c", source="x", lifts={"max_floor_s": 6, "shin_smooth_frames": 5}
    )
    lifts = cfg.lift_config()
    assert lifts.max_floor_s == 6.0 and isinstance(lifts.max_floor_s, float)
    assert lifts.shin_smooth_frames == 5 and isinstance(lifts.shin_smooth_frames, int)
    assert lifts.floor_enter == LiftConfig().floor_enter


def test_the_rescue_detector_can_be_turned_off(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, MINIMAL + "rescue: null\n"), {}).rescue is None
