"""provider batches: a batch's mode, parked jobs, the rounds sent to a provider's Batch API and
the requests they carried

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=16), nullable=False, server_default="live")
        )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "provider_batch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("input_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "round"),
    )
    with op.batch_alter_table("provider_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_batch_batch_id"), ["batch_id"], unique=False)
    op.create_table(
        "llm_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("provider_batch_id", sa.Uuid(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.ForeignKeyConstraint(["provider_batch_id"], ["provider_batch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "key"),
    )
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_llm_request_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_llm_request_provider_batch_id"), ["provider_batch_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("llm_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_llm_request_provider_batch_id"))
        batch_op.drop_index(batch_op.f("ix_llm_request_batch_id"))
    op.drop_table("llm_request")
    with op.batch_alter_table("provider_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_batch_batch_id"))
    op.drop_table("provider_batch")
    # ALTER TABLE ... DROP COLUMN, not batch mode: SQLite's batch mode recreates the table, which
    # the foreign keys to `job` and `batch` forbid while rows refer to them
    op.drop_column("job", "parked_at")
    op.drop_column("batch", "mode")
