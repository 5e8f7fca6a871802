import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

app = Celery("controlpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def worker_processes(consumed_queues) -> list[str]:
    """The heartbeat names of a worker consuming these queues: ``worker`` for the default queue,
    ``risk_worker`` for the risk queue (both for a bare ``celery worker``, which takes both)."""
    from django.conf import settings

    names = {settings.CELERY_TASK_DEFAULT_QUEUE: "worker", settings.RISK_QUEUE: "risk_worker"}
    return [process for queue, process in names.items() if queue in consumed_queues]


# Each Celery process beats from a thread: a worker once it consumes (under the name of the
# queue it serves, so a dead risk worker is missed even while the default one runs), beat
# once it schedules.
@signals.worker_ready.connect
def _worker_heartbeat(sender=None, **_):
    from core.heartbeat import heartbeat_start

    for process in worker_processes(sender.app.amqp.queues.consume_from):
        heartbeat_start(process)


@signals.beat_init.connect
def _beat_heartbeat(**_):
    from core.heartbeat import heartbeat_start

    heartbeat_start("beat")
