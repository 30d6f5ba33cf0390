"""The worker: Celery tasks over the summarization pipeline.

Exposes the Celery app as `worker.app`, so Celery's own tools work: `celery --app worker flower`,
`celery --app worker inspect ping`.
"""

from kernel.celery_app import celery_app as app

__all__ = ["app"]
