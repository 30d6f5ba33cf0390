"""The kernel: settings, database, models, jobs, logging, metrics and the Celery app (the bottom floor)."""
