"""The REST API under /api/v1/. Other apps include theirs under the same prefix."""

from django.urls import path

from customers import api

urlpatterns = [
    path("customers/", api.CustomerListApi.as_view(), name="customers-list"),
    path("customers/<str:external_id>/", api.CustomerDetailApi.as_view(), name="customers-detail"),
    path(
        "customers/<str:external_id>/events/",
        api.CustomerEventsApi.as_view(),
        name="customers-events",
    ),
    path("api-keys/", api.ApiKeyListApi.as_view(), name="api-keys-list"),
    path("api-keys/<int:id>/", api.ApiKeyDetailApi.as_view(), name="api-keys-detail"),
    path("api-keys/<int:id>/revoke/", api.ApiKeyRevokeApi.as_view(), name="api-keys-revoke"),
]
