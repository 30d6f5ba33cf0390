"""The Celery app, shared by the API (which only publishes, by task name) and the worker.

Tasks are listed by name in `include`; the API never imports them. Results live in the database,
so there is no result backend.
"""

from celery import Celery
from celery.signals import setup_logging

from evenhand.config import Settings, get_settings
from evenhand.logging import configure_logging

SUMMARIZE_TASK = "evenhand.summarize_job"


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("evenhand", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_default_queue=settings.queue,
        # JSON only: a pickle payload from anyone who can reach Redis would be code execution.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Events on, so Flower sees every task from the moment it is published.
        worker_send_task_events=True,
        task_send_sent_event=True,
        # A task is acknowledged after it ran, and given back if its worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One LLM job at a time per slot: prefetching more would park jobs behind a slow one.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # The API publishes after committing the job; with Redis down it must not hang the
        # request: the job stays `queued` in the database and is published again later.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 10},
        worker_hijack_root_logger=False,
    )
    return app


@setup_logging.connect
def _configure_celery_logging(**_kwargs: object) -> None:
    # Connecting this signal stops Celery from installing its own log handlers.
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


celery_app = create_celery_app(get_settings())
