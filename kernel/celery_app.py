"""The Celery app, shared by the API (which only publishes, by task name) and the worker.

Tasks are listed by name in `include`; the API never imports them. Results live in the database,
so there is no result backend.
"""

from celery import Celery
from celery.signals import setup_logging

from kernel.config import Settings, get_settings
from kernel.logging import configure_logging

SUMMARIZE_TASK = "evenhand.summarize_job"
WEBHOOK_TASK = "evenhand.deliver_webhook"
COMPARE_STORY_TASK = "evenhand.compare_story"


def create_celery_app(settings: Settings) -> Celery:
    # A job's wall time is bounded by our own deadline (EVENHAND_JOB_TIME_LIMIT, enforced between
    # LLM calls and by each call's timeout, in every pool). Celery's limits sit just above it as a
    # backstop (prefork enforces them; the threads pool cannot kill a thread).
    soft_limit = settings.job_time_limit + settings.llm_timeout
    hard_limit = soft_limit + 30
    # Redis re-delivers an unacknowledged task after the visibility timeout: it must exceed the
    # hard limit, or a task still running would be handed to a second worker. (A dead worker's
    # job does not wait for it: the sweeper reclaims expired leases within seconds.)
    visibility_timeout = int(hard_limit + 300)
    app = Celery("evenhand", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        # kombu's Redis transport with a repair for losing Redis mid-task (see kernel.broker)
        broker_transport="kernel.broker:Transport",
        task_default_queue=settings.queue,
        # JSON only: a pickle payload from anyone who can reach Redis would be code execution.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # results live in the database
        # Events on, so Flower sees every task from the moment it is published.
        worker_send_task_events=True,
        task_send_sent_event=True,
        # A task is acknowledged after it ran, and given back if its worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job per free slot: prefetching more would park jobs behind a slow LLM call.
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft_limit,
        task_time_limit=hard_limit,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
        },
        # Workers started before Redis keep trying instead of exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # On a lost broker connection, late-acked tasks will be redelivered: cancel them rather
        # than let them finish twice (the database claim makes a second run harmless anyway).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # SIGTERM: stop taking tasks, give running ones this long to finish (warm shutdown);
        # what is still running after it is handed back through its expiring lease.
        worker_soft_shutdown_timeout=settings.llm_timeout,
        # The API publishes after committing the job; with Redis down it must not hang the
        # request: the job stays `queued` in the database and the sweeper publishes it later.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
    )
    return app


@setup_logging.connect
def _configure_celery_logging(**_kwargs: object) -> None:
    # Connecting this signal stops Celery from installing its own log handlers.
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


celery_app = create_celery_app(get_settings())
