import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

app = Celery("controlpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Each Celery process beats from a thread: the worker once it consumes, beat once it schedules.
@signals.worker_ready.connect
def _worker_heartbeat(**_):
    from core.heartbeat import heartbeat_start

    heartbeat_start("worker")


@signals.beat_init.connect
def _beat_heartbeat(**_):
    from core.heartbeat import heartbeat_start

    heartbeat_start("beat")
