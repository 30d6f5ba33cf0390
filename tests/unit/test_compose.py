"""docker-compose.yml cannot run here (no Docker engine): parse it and check what production needs."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_piece_is_there(compose: dict) -> None:
    assert {"postgres", "redis", "migrate", "api", "worker", "flower"} <= set(compose["services"])


def test_backing_services_have_healthchecks_and_no_published_ports(compose: dict) -> None:
    for name in ("postgres", "redis"):
        service = compose["services"][name]
        assert service["healthcheck"]["test"], name
        assert "ports" not in service, f"{name} must not be reachable from outside"


def test_start_order_waits_for_health_and_migrations(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["evenhand", "migrate"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_no_sqlite_and_shared_settings(compose: dict) -> None:
    for name in ("migrate", "api", "worker", "flower"):
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "sqlite" not in (ROOT / "docker-compose.yml").read_text().lower()


def test_flower_requires_basic_auth_from_the_environment(compose: dict) -> None:
    command = compose["services"]["flower"]["command"]
    assert command[:4] == ["celery", "--app", "worker", "flower"]
    assert not [arg for arg in command if "basic-auth" in arg or "FLOWER" in arg]  # not in `ps`
    env = compose["services"]["flower"]["environment"]
    assert (
        env["FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:?set FLOWER_BASIC_AUTH to user:password}"
    )


def test_secrets_come_from_the_environment(compose: dict) -> None:
    env = compose["services"]["api"]["environment"]
    assert env["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}"
    assert "${POSTGRES_PASSWORD" in env["DATABASE_URL"]


def _pins(lock: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) ", lock, re.M))


def test_dockerfile_installs_the_tested_versions_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements-prod.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert "USER evenhand" in dockerfile
    # the image's lock is CI's lock without the dev extra: every pin is one CI installed
    tested = _pins((ROOT / "requirements.lock").read_text())
    image = _pins((ROOT / "requirements-prod.lock").read_text())
    assert image and {name: tested.get(name) for name in image} == image
    for dependency in ("fastapi", "celery", "openai", "sqlmodel", "flower"):
        assert dependency in image
    assert "playwright" not in image and "pytest" not in image
