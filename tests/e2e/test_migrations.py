"""Alembic makes the schema, and the schema it makes is exactly what the models describe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from testkit.stack import ROOT

CHECK = """
from alembic import command
from kernel.migrate import alembic_config
command.upgrade(alembic_config(), "head")
command.check(alembic_config())   # raises when the models and the migrations disagree
command.downgrade(alembic_config(), "base")
command.upgrade(alembic_config(), "head")
"""


def run_check(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    run_check(url)
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {"api_key", "article", "job", "result", "argument_point", "evidence"} <= tables


@pytest.mark.e2e
def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    # a database of its own, so the check's downgrade never touches the stack's tables
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = "evenhand_schema_check"
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        run_check(engine.url.set(database=name).render_as_string(hide_password=False))
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
