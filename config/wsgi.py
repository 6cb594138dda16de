import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

# Ingest POSTs skip Django's request/middleware/response machinery (see the module).
from customers.ingest.fast_path import IngestFastPath  # noqa: E402

application = IngestFastPath(django_application)

# What is loaded by now lives as long as the process: keep full garbage collections from
# walking it on every request's allocations (see config/celery.py for the measured gain).
gc.freeze()
