"""The floors: each package imports only those below it, and the CLI's client commands stay light.

kernel/ at the bottom; api/ and worker/ on it (never each other); evenhand/ (the CLI) on top;
testkit/ (the stand-in, stack and fixtures) above them for tests/ and bench/.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the top-level names it must never import
FORBIDDEN = {
    "kernel": {"api", "worker", "evenhand", "testkit", "bench", "tests", "openai"},
    "api": {"worker", "evenhand", "testkit", "bench", "tests", "openai"},
    "worker": {"api", "evenhand", "testkit", "bench", "tests"},
    "evenhand": {"testkit", "bench", "tests"},
    "testkit": {"bench", "tests"},
    "bench": {"tests"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_one_above_it(package: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_top_levels(path) & FORBIDDEN[package])
    ]
    assert not offences, offences


def modules_loaded_by(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """Top-level modules a real `evenhand ARGV` run has imported by the time it exits."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['evenhand', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('evenhand.cli', run_name='__main__')\n"
        "finally:\n"
        "    print('MODULES', *sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "EVENHAND_API_URL": "http://127.0.0.1:9", **(env or {})},
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


HEAVY = {"openai", "worker", "api", "uvicorn", "celery", "sqlalchemy", "alembic"}


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("status", "00000000-0000-0000-0000-000000000000"),
        ("submit", "-"),
        ("list",),
        ("cancel", "00000000-0000-0000-0000-000000000000"),
        ("retry", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_client_commands_load_neither_the_pipeline_nor_the_servers(argv: tuple[str, ...]) -> None:
    loaded = modules_loaded_by(*argv, env={"EVENHAND_API_KEY": "eh_test"})
    assert "evenhand" in loaded  # the probe really ran the CLI
    assert not loaded & HEAVY, loaded & HEAVY


def test_key_commands_load_the_database_but_not_the_pipeline(tmp_path: Path) -> None:
    loaded = modules_loaded_by("keys", "list", env={"DATABASE_URL": f"sqlite:///{tmp_path}/k.db"})
    assert "sqlalchemy" in loaded
    assert not loaded & {"openai", "worker", "api", "uvicorn"}
