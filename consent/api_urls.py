"""Consent's part of the REST API, under /api/v1/ beside the customers app's."""

from django.urls import path

from consent import api

urlpatterns = [
    path(
        "customers/<str:external_id>/consent/",
        api.ConsentApi.as_view(),
        name="customers-consent",
    ),
    path(
        "customers/<str:external_id>/consent/events/",
        api.ConsentEventsApi.as_view(),
        name="customers-consent-events",
    ),
    path(
        "customers/<str:external_id>/export/",
        api.CustomerExportApi.as_view(),
        name="customers-export",
    ),
]
