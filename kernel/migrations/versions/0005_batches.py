"""batches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:39:45.782315
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_key.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_job_batch_id"), ["batch_id"], unique=False)
        batch_op.create_foreign_key("fk_job_batch_id_batch", "batch", ["batch_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_constraint("fk_job_batch_id_batch", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_job_batch_id"))
        batch_op.drop_column("batch_id")

    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_owner_id"))

    op.drop_table("batch")
