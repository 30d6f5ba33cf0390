"""Run Alembic migrations programmatically (the only way the schema is made)."""

from alembic import command
from alembic.config import Config


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "kernel:migrations")
    return config


def upgrade_to_head() -> None:
    command.upgrade(alembic_config(), "head")
