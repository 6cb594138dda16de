"""The REST API under /api/v1/. Other apps include theirs under the same prefix."""

from django.urls import path

from customers import api, converters  # noqa: F401 (registers <external_id:…>)

# An external id may hold "/" (customers/converters.py): the events route comes before the
# profile's own route, which takes anything ending in "/"; config/urls.py includes the
# other apps' customer sub-resources (consent, export) before this file for that reason.
urlpatterns = [
    path("customers/", api.CustomerListApi.as_view(), name="customers-list"),
    path(
        "customers/<external_id:external_id>/events/",
        api.CustomerEventsApi.as_view(),
        name="customers-events",
    ),
    path(
        "customers/<external_id:external_id>/",
        api.CustomerDetailApi.as_view(),
        name="customers-detail",
    ),
    path("api-keys/", api.ApiKeyListApi.as_view(), name="api-keys-list"),
    path("api-keys/<int:id>/", api.ApiKeyDetailApi.as_view(), name="api-keys-detail"),
    path("api-keys/<int:id>/revoke/", api.ApiKeyRevokeApi.as_view(), name="api-keys-revoke"),
]
