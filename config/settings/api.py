from config.env import env_str

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["customers.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["customers.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env_str("API_THROTTLE_RATE", "600/min")},
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Journeyline API",
    "DESCRIPTION": "Manage customers, their events and API keys. "
    "Events are sent through the Segment-compatible ingest API under /v1/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that several components share get one stable name (and no warning).
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "consent.channels.CONSENT_CHANNEL_CHOICES",
        # consent's serializers list the bare values (labels equal to values).
        "ChannelValueEnum": "consent.channels.CONSENT_CHANNELS",
    },
    # The ApiKey bearer scheme and each operation's security requirement come from the
    # authentication extension in customers/authentication.py (a global SECURITY here
    # would list it twice on every operation).
}
