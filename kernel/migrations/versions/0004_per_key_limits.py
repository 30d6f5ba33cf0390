"""per-key limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:30:04.655756
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rate_limit", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("daily_jobs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("daily_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("daily_tokens")
        batch_op.drop_column("daily_jobs")
        batch_op.drop_column("rate_limit")
