"""deploy/compose.yaml, its Dockerfiles, Prometheus and Grafana files agree with each other
and with the code: every image, port, volume, secret, target and metric they name exists.

`docker compose config` runs too where the compose plugin works; without it (no plugin or
no daemon here) the same facts are checked by reading the files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard.config import DashboardConfig

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MADE_ON_SITE = {
    "mosquitto/passwords": "add-camera",
    "mosquitto/certs": "make-certs",
    "mosquitto/certs/ca.crt": "make-certs",
}
"""Bind mounts the site's scripts create (never committed), with the script that does."""


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def ignored(relative: str) -> bool:
    """Whether deploy/.gitignore keeps this site file out of the repository."""
    done = subprocess.run(
        ["git", "check-ignore", "-q", f"deploy/{relative}"], cwd=REPO, capture_output=True
    )
    return done.returncode == 0


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client has no compose plugin here")
    done = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_stack_has_every_service_with_a_pinned_image() -> None:
    assert set(services()) == {"mosquitto", "postgres", "dashboard", "prometheus", "grafana"}
    for name, service in services().items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


@pytest.mark.parametrize(("service", "extra"), [("dashboard", "dashboard")])
def test_built_images_come_from_dockerfiles_that_install_the_package(
    service: str, extra: str
) -> None:
    build = services()[service]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    check_dockerfile(context / build["dockerfile"], extra)


def test_the_edge_image_is_built_the_same_way() -> None:
    check_dockerfile(DEPLOY / "edge.Dockerfile", "edge")


def check_dockerfile(path: Path, extra: str) -> None:
    text = path.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M), "multi-arch base image"
    assert re.search(rf'pip install (-e )?"\.\[{extra}\]"', text), f"installs liftwatch[{extra}]"
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert extra in extras["optional-dependencies"]
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (REPO / source).exists(), f"{path.name}: COPY {source}: no such file"
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0"), f"{path.name} must run unprivileged"
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]$', text, re.M)
    assert entry and entry.group(1) in extras["scripts"]
    ignore = path.with_name(path.name + ".dockerignore").read_text().splitlines()
    assert "*" in ignore, "send only what the image needs, not .venv or out/"


def test_every_bind_mount_exists_or_is_made_by_a_site_script() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for name, service in services().items():
        for source, _ in bind_mounts(service):
            relative = str(Path(source).relative_to("."))
            if (DEPLOY / relative).exists():
                continue
            script = MADE_ON_SITE.get(relative)
            assert script, f"{name}: {source} does not exist"
            assert (DEPLOY / "mosquitto" / script).exists()
            assert ignored(relative), f"{source} must be gitignored: it holds site secrets"
            assert script in readme


def test_named_volumes_secrets_and_env_files_are_declared() -> None:
    top = compose()
    for name, service in services().items():
        for spec in service.get("volumes", []):
            source = spec.split(":")[0]
            if not source.startswith("."):
                assert source in top["volumes"], f"{name}: volume {source} not declared"
        for secret in service.get("secrets", []):
            assert secret in top["secrets"], f"{name}: secret {secret} not declared"
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):
                assert value.removeprefix("/run/secrets/") in service["secrets"], key
        for env_file in service.get("env_file", []):
            relative = str(Path(env_file).relative_to("."))
            assert (DEPLOY / f"{relative}.example").exists()
            assert ignored(relative)
    for secret in top["secrets"].values():
        relative = str(Path(secret["file"]).relative_to("."))
        assert (DEPLOY / f"{relative}.example").exists()
        assert ignored(relative)


def test_published_ports_are_what_the_services_listen_on() -> None:
    s = services()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    tls_listener = re.search(r"^listener (\d+)\n(?:(?!listener).*\n)*?cafile", conf, re.M)
    assert tls_listener
    assert s["mosquitto"]["ports"] == [f"{tls_listener.group(1)}:{tls_listener.group(1)}"]
    dashboard = DashboardConfig.model_validate(
        yaml.safe_load((DEPLOY / "dashboard" / "dashboard.yaml").read_text())
    )
    assert s["dashboard"]["ports"] == [f"{dashboard.web.port}:{dashboard.web.port}"]
    assert dashboard.web.host == "0.0.0.0"
    hosts = [p.rsplit(":", 1)[0] for svc in s.values() for p in svc.get("ports", [])]
    assert len(hosts) == len(set(hosts)), "two services on one host port"


def test_the_mosquitto_container_has_every_file_its_config_names() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    targets = [t for _, t in bind_mounts(services()["mosquitto"])]
    targets += [
        spec.split(":")[1]
        for spec in services()["mosquitto"]["volumes"]
        if not spec.startswith(".")
    ]
    paths = re.findall(r"^\w+ (/mosquitto/\S+)$", conf, re.M)
    assert len(paths) >= 6
    for path in paths:
        assert any(path.rstrip("/") == t or path.startswith(t + "/") for t in targets), path


def test_the_dashboard_reaches_the_broker_and_database_of_the_stack() -> None:
    dashboard = services()["dashboard"]
    cfg = DashboardConfig.model_validate(
        yaml.safe_load((DEPLOY / "dashboard" / "dashboard.yaml").read_text())
    )
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.port == 8883
    assert cfg.mqtt.tls is not None
    assert str(cfg.mqtt.tls.ca_file) in [t for _, t in bind_mounts(dashboard)]
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    assert f"user {cfg.mqtt.username}\n" in acl
    assert "mosquitto" in (DEPLOY / "README.md").read_text()  # make-certs names it
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "dashboard.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(env) == {"DATABASE_URL", "LIFTWATCH_MQTT_PASSWORD"}
    postgres = services()["postgres"]["environment"]
    url = re.fullmatch(r"postgresql://(\w+):[^@]+@(\w+):5432/(\w+)", env["DATABASE_URL"])
    assert url and url.groups() == (postgres["POSTGRES_USER"], "postgres", postgres["POSTGRES_DB"])
    assert dashboard["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_prometheus_scrapes_the_dashboard_and_the_agents() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    web = yaml.safe_load((DEPLOY / "dashboard" / "dashboard.yaml").read_text())["web"]
    assert jobs["liftwatch-dashboard"]["static_configs"][0]["targets"] == [
        f"dashboard:{web['port']}"
    ]
    mounts = dict((t, s) for s, t in bind_mounts(services()["prometheus"]))
    for sd in jobs["liftwatch-edge"]["file_sd_configs"]:
        for path in sd["files"]:
            agents = yaml.safe_load((DEPLOY / mounts[path]).read_text())
            assert isinstance(agents, list)
    assert "/etc/prometheus/prometheus.yml" in mounts


GRAFANA = DEPLOY / "grafana"


def datasource_uid() -> str:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in services()
    uid: str = source["uid"]
    return uid


def dashboard_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "liftwatch.json").read_text())
    return data


def test_grafana_loads_the_dashboard_folder_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/liftwatch.yaml").read_text())
    (entry,) = provider["providers"]
    mounts = dict((t, s) for s, t in bind_mounts(services()["grafana"]))
    assert Path(mounts[entry["options"]["path"]]) == Path("./grafana/dashboards")
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


def test_every_grafana_panel_uses_the_provisioned_datasource() -> None:
    uid = datasource_uid()
    panels = [p for p in dashboard_json()["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard_json()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    for variable in dashboard_json()["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid


def exposed_metric_families() -> set[str]:
    """Metric family names the agent and the dashboard define (string literals in the code)."""
    names: set[str] = set()
    for package in ("edge", "dashboard"):
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r'"(liftwatch_[a-z0-9_]+)"', path.read_text()))
    return names


def test_every_metric_on_the_grafana_dashboard_is_one_the_code_exposes() -> None:
    exposed = exposed_metric_families()
    used: set[str] = set()
    for panel in dashboard_json()["panels"]:
        for target in panel.get("targets", []):
            used |= set(re.findall(r"\b(liftwatch_[a-z0-9_]+)", target["expr"]))
    for variable in dashboard_json()["templating"]["list"]:
        used |= set(re.findall(r"\b(liftwatch_[a-z0-9_]+)", variable["definition"]))
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    missing = families - exposed
    assert not missing, f"metrics no code exposes: {sorted(missing)}"
    wanted = {
        "liftwatch_events_ingested",
        "liftwatch_invalid_payloads",
        "liftwatch_ingest_lag_seconds",
        "liftwatch_mqtt_connected",
        "liftwatch_db_write_seconds",
        "liftwatch_edge_inference_seconds",
        "liftwatch_edge_outbox_depth",
        "liftwatch_edge_mqtt_connected",
    }
    assert wanted <= families, f"panels missing for {sorted(wanted - families)}"
