"""The README documents every setting (the docs are the truth, so they must stay complete)."""

from pathlib import Path

from kernel.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


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
