"""deploy/pi/: the systemd unit, the install script and the example config agree and are valid."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from edge.agent import MAX_STEP_S
from edge.config import AgentConfig

REPO = Path(__file__).resolve().parents[2]
PI = REPO / "deploy" / "pi"
UNIT = PI / "liftwatch-edge@.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    executable = REPO / ".venv" / "bin" / "liftwatch-edge"
    if not executable.exists():
        executable = Path(shutil.which("liftwatch-edge") or "/bin/true")
    text = UNIT.read_text().replace("/opt/liftwatch/venv/bin/liftwatch-edge", str(executable))
    instance = tmp_path / "liftwatch-edge@dock-3.service"
    instance.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(instance)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # unknown keys are only warned about


def test_the_unit_restarts_watches_and_runs_unprivileged() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    watchdog_s = float(service["WatchdogSec"])
    assert watchdog_s > MAX_STEP_S, "a slow frame must not be mistaken for a hang"
    assert service["User"] == "liftwatch"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == ""
    assert service["StateDirectory"] == "liftwatch"


def test_the_unit_runs_what_install_sh_installs() -> None:
    script = (PI / "install.sh").read_text()
    service = unit()["Service"]
    prefix = re.search(r"^prefix=(\S+)$", script, re.M)
    etc = re.search(r"^etc=(\S+)$", script, re.M)
    assert prefix and etc
    assert service["ExecStart"] == (
        f"{prefix.group(1)}/venv/bin/liftwatch-edge run --config {etc.group(1)}/%i.yaml"
    )
    assert '"$etc/$name.yaml"' in script
    assert f"LIFTWATCH_MODEL_DIR={prefix.group(1)}/models" in service["Environment"]
    assert "liftwatch-edge@.service" in script
    done = subprocess.run(["bash", "-n", str(PI / "install.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_example_config_is_valid_and_writes_where_the_unit_allows() -> None:
    cfg = AgentConfig.model_validate(yaml.safe_load((PI / "camera.yaml").read_text()))
    state = Path("/var/lib") / unit()["Service"]["StateDirectory"]
    assert cfg.outbox.path.parent == state
    assert cfg.broker.username == f"{cfg.site}/{cfg.camera}"  # the ACL's convention
    assert cfg.broker.tls is not None and cfg.broker.port == 8883
    assert cfg.metrics_port is not None
