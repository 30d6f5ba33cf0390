"""Session-wide real services; the `stack` fixture runs every end-to-end test on SQLite and on
PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.stack import (
    FakeLLM,
    Stack,
    fake_llm_service,
    fresh_database,
    postgres_server,
    redis_service,
    running_stack,
)


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    with redis_service(services_dir) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server_url(services_dir: Path) -> Iterator[str]:
    with postgres_server(services_dir) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def fake_llm(services_dir: Path) -> Iterator[FakeLLM]:
    with fake_llm_service(services_dir) as llm:
        yield llm


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, services_dir: Path, redis_url: str, fake_llm: FakeLLM
) -> Iterator[Stack]:
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{services_dir / 'evenhand.db'}"
    with running_stack(request.param, database_url, redis_url, fake_llm, services_dir) as running:
        yield running


@pytest.fixture(scope="session")
def support_stack(services_dir: Path, redis_url: str, fake_llm: FakeLLM) -> Iterator[Stack]:
    """A stack with the support check on, as it is by default (`stack` has it off)."""
    database_url = f"sqlite:///{services_dir / 'support.db'}"
    with running_stack(
        "support", database_url, redis_url, fake_llm, services_dir, EVENHAND_SUPPORT_CHECK="true"
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _calm_llm(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with an LLM stand-in that answers at once and never fails."""
    if not {"stack", "support_stack", "fake_llm"} & set(request.fixturenames):
        yield
        return
    llm: FakeLLM = request.getfixturevalue("fake_llm")
    calm = {
        "latency": 0,
        "faults": [],
        "max_context_chars": None,
        "requests_log": False,
        "hold": False,
        "support": "supports",
        "batch": "complete",
        "server": "openai",
        "models": None,
    }
    llm.control(**calm, reset_stats=True)
    yield
    llm.control(**calm)
