"""Alembic makes the schema, and the schema it makes is exactly what the models describe."""

import json
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
    assert {"api_key", "article", "job", "result"} <= tables
    assert not {"argument_point", "evidence"} & tables  # a result is one document


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


CARRY_OVER = """
import json, uuid
import sqlalchemy as sa
from alembic import command
from kernel.db import get_engine
from kernel.migrate import alembic_config
from kernel.results import result_of_job

command.upgrade(alembic_config(), "0006")
ids = {name: uuid.uuid4() for name in ("article", "job", "result")}
hexes = {name: value.hex for name, value in ids.items()}  # how SQLite stores a Uuid column
with get_engine().begin() as c:
    c.execute(sa.text("INSERT INTO api_key (id, name, prefix, key_hash, created_at)"
                      " VALUES (7, 'k', 'eh_', 'h', CURRENT_TIMESTAMP)"))
    c.execute(sa.text("INSERT INTO article (id, owner_id, input_kind, raw_text, created_at)"
                      " VALUES (:a, 7, 'text', 'The text.', CURRENT_TIMESTAMP)"), {"a": hexes["article"]})
    c.execute(sa.text("INSERT INTO job (id, article_id, owner_id, status, attempts, created_at)"
                      " VALUES (:j, :a, 7, 'succeeded', 1, CURRENT_TIMESTAMP)"),
              {"j": hexes["job"], "a": hexes["article"]})
    c.execute(sa.text(
        "INSERT INTO result (id, job_id, article_id, content_hash, article_type, thesis, summary,"
        " loaded_language, summary_loaded_terms, provider, model, prompt_version, prompt_tokens,"
        " completion_tokens, llm_calls, quotes, verified, chars_in, chars_kept, lines_removed,"
        " created_at) VALUES (:r, :j, :a, 'h', 'opinion', 'T.', 'S.', :loaded, '[]', 'openai',"
        " 'm', 'v1', 10, 5, 1, 2, 1, 30, 20, 3, CURRENT_TIMESTAMP)"),
        {"r": hexes["result"], "j": hexes["job"], "a": hexes["article"],
         "loaded": json.dumps([{"term": "rushed", "start": 1, "end": 7}])})
    point = c.execute(sa.text(
        "INSERT INTO argument_point (result_id, position, claim, speaker, premises)"
        " VALUES (:r, 0, 'C.', 'Ann', :p) RETURNING id"),
        {"r": hexes["result"], "p": json.dumps(["P."])}).scalar_one()
    for pos, (quote, verified) in enumerate([("The text", True), ("Not there", False)]):
        c.execute(sa.text(
            'INSERT INTO evidence (point_id, position, quote, start, "end", verified, score)'
            " VALUES (:p, :pos, :q, 0, 8, :v, 100.0)"),
            {"p": point, "pos": pos, "q": quote, "v": verified})
command.upgrade(alembic_config(), "head")
with get_engine().connect() as c:
    print(result_of_job(c, ids["job"]).model_dump_json())
command.downgrade(alembic_config(), "0006")
with get_engine().connect() as c:
    print(json.dumps([c.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
                      for t in ("result", "argument_point", "evidence")]))
"""


def test_stored_results_are_carried_over_both_ways(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", CARRY_OVER], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document, counts = done.stdout.strip().splitlines()[-2:]
    result = json.loads(document)
    assert result["thesis"] == "T." and result["summary"] == "S."
    assert result["loaded_language"] == [{"term": "rushed", "start": 1, "end": 7}]
    [point] = result["argument_points"]
    assert (point["claim"], point["speaker"], point["premises"]) == ("C.", "Ann", ["P."])
    assert [(e["quote"], e["verified"]) for e in point["evidence"]] == [
        ("The text", True),
        ("Not there", False),
    ]
    assert result["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "llm_calls": 1}
    assert (result["grounding"]["quotes"], result["grounding"]["verified"]) == (2, 1)
    assert result["grounding"]["supports"] == 0  # not judged then: the field's default
    assert result["cleaning"] == {"chars_in": 30, "chars_kept": 20, "lines_removed": 3}
    assert json.loads(counts) == [1, 1, 2]  # and back again
