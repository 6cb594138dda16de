"""Consent's part of the REST API, under /api/v1/ beside the customers app's.

External ids may hold "/" (customers/converters.py): config/urls.py includes these before
the customers app's routes, whose profile route would otherwise take ".../consent/" too.
"""

from django.urls import path

from consent import api
from customers import converters  # noqa: F401 (registers <external_id:…>)

urlpatterns = [
    path(
        "customers/<external_id:external_id>/consent/",
        api.ConsentApi.as_view(),
        name="customers-consent",
    ),
    path(
        "customers/<external_id:external_id>/consent/events/",
        api.ConsentEventsApi.as_view(),
        name="customers-consent-events",
    ),
    path(
        "customers/<external_id:external_id>/export/",
        api.CustomerExportApi.as_view(),
        name="customers-export",
    ),
]
