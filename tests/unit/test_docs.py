"""The README documents every setting (the docs are the truth, so they must stay complete)."""

from pathlib import Path

from kernel.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        variable = (
            field.validation_alias
            if isinstance(field.validation_alias, str)
            else f"EVENHAND_{name.upper()}"
        )
        if f"`{variable}`" not in README:
            missing.append(variable)
    assert missing == []


def _sh_blocks(text: str) -> list[str]:
    return [block.split("```")[0].strip() for block in text.split("```sh\n")[1:]]


def test_ci_runs_the_readme_test_command_from_the_lock_file() -> None:
    readme_command = next(b for b in _sh_blocks(README) if b.endswith(".venv/bin/pytest"))
    install, *_, run = readme_command.split(" && ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-r requirements.lock" in readme_command
    assert "pip install -q -r requirements.lock" in ci and run in ci.splitlines()
    assert install in ci


def test_the_lock_refresh_commands_match_the_lock_files() -> None:
    refresh = next(b for b in _sh_blocks(README) if "uv pip compile" in b).splitlines()
    commands = [line.removeprefix(".venv/bin/").strip() for line in refresh]
    for lock in ("requirements.lock", "requirements-prod.lock"):
        header = (ROOT / lock).read_text().splitlines()[1]
        assert header.strip("# ").strip() in commands
