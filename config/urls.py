from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from config.health import healthz
from config.metrics import metrics

# The schema and its docs page are public: they describe the API, they hold no data.
_public = {"permission_classes": [AllowAny], "authentication_classes": [], "throttle_classes": []}

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("v1/", include("customers.ingest.urls")),
    # Customers' sub-resources of other apps first: an external id may hold "/", and
    # customers.urls ends with the profile route that takes anything ending in "/".
    path("api/v1/", include("consent.api_urls")),
    path("api/v1/", include("customers.urls")),
    path("api/v1/", include("journeys.urls")),
    path("api/v1/", include("segments.api_urls")),
    path("consent/", include("consent.urls")),
    path("campaigns/", include("campaigns.urls")),
    # Email providers' tracking webhooks (django-anymail): /anymail/<provider>/tracking/
    path("anymail/", include("anymail.urls")),
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **_public), name="api-docs"
    ),
]
