"""The Celery app. Without CELERY_BROKER_URL tasks run in-process (eager)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_program.settings")

# A task the broker cannot take is logged and skipped, not raised (docs/reliability.md).
app = Celery("referral_program", task_cls="referral_program.resilience:BrokerTolerantTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
