"""job leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:08:59.292704
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index(batch_op.f("ix_job_status"))
        batch_op.create_index("ix_job_status_lease", ["status", "lease_expires_at"], unique=False)
        batch_op.create_index("ix_job_status_published", ["status", "published_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_status_published")
        batch_op.drop_index("ix_job_status_lease")
        batch_op.create_index(batch_op.f("ix_job_status"), ["status"], unique=False)
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_token")
