"""`row_values`: a row as a dict with the model's own defaults, as building the object gives."""

import uuid

import pytest

from kernel.models import IdempotencyRecord, Job, JobStatus, row_values


def test_a_row_gets_the_models_defaults_and_a_fresh_id_each_time() -> None:
    article_id = uuid.uuid4()
    first = row_values(Job, article_id=article_id, owner_id=1)
    second = row_values(Job, article_id=article_id, owner_id=1)
    built = Job(article_id=article_id, owner_id=1)
    assert first.keys() == set(Job.model_fields)
    assert first["status"] == built.status == JobStatus.queued and first["attempts"] == 0
    assert first["id"] != second["id"] and first["created_at"].tzinfo is not None


def test_an_autoincrement_key_is_left_to_the_database() -> None:
    record = row_values(
        IdempotencyRecord, owner_id=1, key="k", request_hash="h", job_id=uuid.uuid4()
    )
    assert "id" not in record


def test_a_field_the_model_does_not_have_is_an_error() -> None:
    with pytest.raises(TypeError, match="no field sttus"):
        row_values(Job, article_id=uuid.uuid4(), owner_id=1, sttus="queued")
