"""a result is stored as one document

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:20:00.000000

The result's fields move from columns of `result` and the `argument_point` and `evidence` tables
into one JSON document per result, in the shape the API serves; every stored result is carried
over, both ways.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _flat_columns() -> list[sa.Column[Any]]:
    """The columns as they stood before this revision, to read and write them here."""
    return [
        sa.Column("article_type", sqlmodel.sql.sqltypes.AutoString(length=16)),
        sa.Column("thesis", sa.Text()),
        sa.Column("summary", sa.Text()),
        sa.Column("loaded_language", sa.JSON()),
        sa.Column("summary_loaded_terms", sa.JSON()),
        sa.Column("llm_calls", sa.Integer()),
        sa.Column("quotes", sa.Integer()),
        sa.Column("verified", sa.Integer()),
        sa.Column("chars_in", sa.Integer()),
        sa.Column("chars_kept", sa.Integer()),
        sa.Column("lines_removed", sa.Integer()),
    ]


def _tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    meta = sa.MetaData()
    result = sa.Table(
        "result",
        meta,
        sa.Column("id", sa.Uuid()),
        sa.Column("provider", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("prompt_version", sa.String()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("document", sa.JSON()),
        *_flat_columns(),
    )
    point = sa.Table(
        "argument_point",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("result_id", sa.Uuid()),
        sa.Column("position", sa.Integer()),
        sa.Column("claim", sa.Text()),
        sa.Column("speaker", sa.Text()),
        sa.Column("premises", sa.JSON()),
    )
    evidence = sa.Table(
        "evidence",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("point_id", sa.Integer()),
        sa.Column("position", sa.Integer()),
        sa.Column("quote", sa.Text()),
        sa.Column("start", sa.Integer()),
        sa.Column("end", sa.Integer()),
        sa.Column("verified", sa.Boolean()),
        sa.Column("score", sa.Float()),
    )
    return result, point, evidence


def _document(row: Any, points: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "article_type": row.article_type,
        "thesis": row.thesis,
        "summary": row.summary,
        "argument_points": points,
        "loaded_language": row.loaded_language or [],
        "provider": row.provider,
        "model": row.model,
        "prompt_version": row.prompt_version,
        "usage": {
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "llm_calls": row.llm_calls,
        },
        "grounding": {"quotes": row.quotes, "verified": row.verified},
        "cleaning": {
            "chars_in": row.chars_in,
            "chars_kept": row.chars_kept,
            "lines_removed": row.lines_removed,
        },
        "neutrality": {"summary_loaded_terms": row.summary_loaded_terms or []},
    }


def upgrade() -> None:
    with op.batch_alter_table("result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document", sa.JSON(), nullable=True))
    connection = op.get_bind()
    result, point, evidence = _tables()
    for row in connection.execute(sa.select(result)).all():
        points = []
        for p in connection.execute(
            sa.select(point).where(point.c.result_id == row.id).order_by(point.c.position)
        ).all():
            quotes = connection.execute(
                sa.select(evidence).where(evidence.c.point_id == p.id).order_by(evidence.c.position)
            ).all()
            points.append(
                {
                    "claim": p.claim,
                    "speaker": p.speaker,
                    "premises": p.premises or [],
                    "evidence": [
                        {
                            "quote": e.quote,
                            "start": e.start,
                            "end": e.end,
                            "verified": e.verified,
                            "score": e.score,
                        }
                        for e in quotes
                    ],
                }
            )
        connection.execute(
            result.update().where(result.c.id == row.id).values(document=_document(row, points))
        )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_point_id"))
    op.drop_table("evidence")
    with op.batch_alter_table("argument_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_argument_point_result_id"))
    op.drop_table("argument_point")
    with op.batch_alter_table("result", schema=None) as batch_op:
        batch_op.alter_column("document", existing_type=sa.JSON(), nullable=False)
        for column in _flat_columns():
            batch_op.drop_column(column.name)


def downgrade() -> None:
    with op.batch_alter_table("result", schema=None) as batch_op:
        for column in _flat_columns():
            batch_op.add_column(column)
    connection = op.get_bind()
    result, point, evidence = _tables()
    rows = connection.execute(sa.select(result.c.id, result.c.document)).all()
    for row in rows:
        doc = row.document
        connection.execute(
            result.update()
            .where(result.c.id == row.id)
            .values(
                article_type=doc["article_type"],
                thesis=doc["thesis"],
                summary=doc["summary"],
                loaded_language=doc["loaded_language"],
                summary_loaded_terms=doc["neutrality"]["summary_loaded_terms"],
                llm_calls=doc["usage"]["llm_calls"],
                quotes=doc["grounding"]["quotes"],
                verified=doc["grounding"]["verified"],
                **doc["cleaning"],
            )
        )
    # before the point tables exist: SQLite's batch mode recreates `result`, which a foreign key
    # to it would forbid
    with op.batch_alter_table("result", schema=None) as batch_op:
        for column in _flat_columns():
            batch_op.alter_column(
                column.name,
                existing_type=column.type,
                nullable=column.name == "loaded_language",
                server_default="[]" if column.name == "summary_loaded_terms" else None,
            )
        batch_op.drop_column("document")
    op.create_table(
        "argument_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("speaker", sa.Text(), nullable=False),
        sa.Column("premises", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["result_id"], ["result.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("argument_point", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_argument_point_result_id"), ["result_id"], unique=False
        )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["point_id"], ["argument_point.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_point_id"), ["point_id"], unique=False)
    for row in rows:
        for position, p in enumerate(row.document["argument_points"]):
            point_id = connection.execute(
                point.insert()
                .values(
                    result_id=row.id,
                    position=position,
                    claim=p["claim"],
                    speaker=p["speaker"],
                    premises=p["premises"],
                )
                .returning(point.c.id)
            ).scalar_one()
            for ev_position, e in enumerate(p["evidence"]):
                connection.execute(
                    evidence.insert().values(
                        point_id=point_id,
                        position=ev_position,
                        quote=e["quote"],
                        start=e["start"],
                        end=e["end"],
                        verified=e["verified"],
                        score=e["score"],
                    )
                )
