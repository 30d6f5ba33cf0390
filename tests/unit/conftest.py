"""Fixtures shared by the unit tests that need a database: a migrated SQLite file of their own."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from kernel import config, db
from kernel.migrate import upgrade_to_head


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A session on a fresh SQLite database, migrated to the latest schema."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unit.db'}")
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    upgrade_to_head()
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
