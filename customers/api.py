"""The REST API of the customers app under /api/v1/: thin views over selectors and services.

Authentication, scopes and throttling come from the REST_FRAMEWORK settings (a Bearer API
key; ``read`` for safe methods, ``write`` otherwise, ``admin`` for the keys themselves).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from customers.models import ApiKey, Customer
from customers.selectors import (
    api_key_get,
    api_key_list,
    customer_events,
    customer_get_by_external_id,
    customer_list,
)
from customers.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    CustomerSearchSerializer,
    CustomerSerializer,
    CustomerWriteSerializer,
    EventFilterSerializer,
    EventSerializer,
    FieldErrorsSerializer,
    is_valid_external_id,
)
from customers.services.api_keys import api_key_create, api_key_revoke
from customers.services.profiles import customer_put, customer_update

# Every path that takes an external id says how to put any id in it.
EXTERNAL_ID_HELP = (
    "The customer's userId, percent-encoded as one path segment like any URL part "
    "(`a/b` as `a%2Fb`, `100%` as `100%25`, `x y` as `x%20y`). An id ending in `/events`, "
    "`/consent`, `/consent/events` or `/export` reads as that part of the shorter id: "
    "find such a profile with `GET /api/v1/customers/?search=`."
)
EXTERNAL_ID = OpenApiParameter(
    "external_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description=EXTERNAL_ID_HELP
    + " An id merged into another profile by an alias resolves to the surviving profile.",
)
KEY_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The key's id."
)
# Error bodies are DRF's: {"detail": "..."} for a refused request, and for invalid input
# an object naming each field at fault with its reasons.
ERROR_DETAIL = inline_serializer("ErrorDetail", fields={"detail": serializers.CharField()})
FIELD_ERRORS = OpenApiResponse(
    response=FieldErrorsSerializer,
    description="Invalid input: each field at fault with the reasons "
    "(``non_field_errors`` or ``detail`` when the body as a whole is wrong).",
)
ERRORS = {
    400: FIELD_ERRORS,
    404: OpenApiResponse(ERROR_DETAIL, description="Not found."),
}
# Every operation can answer these; listed once so the schema tells clients what to expect.
AUTH_ERRORS = {
    401: OpenApiResponse(ERROR_DETAIL, description="No key, or an unknown or revoked one."),
    403: OpenApiResponse(ERROR_DETAIL, description="The key lacks the scope this request needs."),
    429: OpenApiResponse(
        ERROR_DETAIL,
        description="Too many requests for this key; the Retry-After header says when to retry.",
    ),
}


def responses(ok: dict, *error_codes: int) -> dict:
    """The answers of an operation for the schema. Other apps' APIs use this and the
    paginations below too, so that every resource under /api/v1/ documents alike."""
    answers = {**ok, **AUTH_ERRORS}
    for code in error_codes:
        answers[code] = ERRORS[code]
    return answers


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstPagination(CursorPagination):
    """Cursors stay right while new events arrive, and never count the whole history."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-timestamp", "-id")


def _customer_or_404(external_id: str) -> Customer:
    if not is_valid_external_id(external_id):
        raise Http404  # no customer can have it; PostgreSQL would refuse a NUL byte anyway
    customer = customer_get_by_external_id(external_id=external_id)
    if customer is None:
        raise Http404
    return customer


def _api_key_or_404(key_id: int) -> ApiKey:
    api_key = api_key_get(api_key_id=key_id)
    if api_key is None:
        raise Http404
    return api_key


@extend_schema(tags=["customers"])
class CustomerListApi(GenericAPIView):
    serializer_class = CustomerSerializer
    pagination_class = PagePagination

    @extend_schema(
        operation_id="customers_list",
        parameters=[CustomerSearchSerializer],
        responses=responses({200: CustomerSerializer(many=True)}, 400),
    )
    def get(self, request: Request) -> Response:
        """Customers, newest first. ``search`` finds by email or external id prefix."""
        query = CustomerSearchSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customers = customer_list(search=query.validated_data.get("search", ""))
        page = self.paginate_queryset(customers)
        return self.get_paginated_response(CustomerSerializer(page, many=True).data)


@extend_schema(tags=["customers"], parameters=[EXTERNAL_ID])
class CustomerDetailApi(GenericAPIView):
    serializer_class = CustomerSerializer

    @extend_schema(
        operation_id="customers_retrieve", responses=responses({200: CustomerSerializer}, 404)
    )
    def get(self, request: Request, external_id: str) -> Response:
        """One customer's profile."""
        return Response(CustomerSerializer(_customer_or_404(external_id)).data)

    @extend_schema(
        operation_id="customers_put",
        request=CustomerWriteSerializer,
        responses=responses(
            {
                200: OpenApiResponse(CustomerSerializer, description="Replaced."),
                201: OpenApiResponse(CustomerSerializer, description="Created."),
            },
            400,
        ),
    )
    def put(self, request: Request, external_id: str) -> Response:
        """Create the customer, or replace its profile: omitted fields are cleared."""
        data = CustomerWriteSerializer(data=request.data, context={"external_id": external_id})
        data.is_valid(raise_exception=True)
        customer, created = customer_put(external_id=external_id, **data.validated_data)
        return Response(
            CustomerSerializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="customers_update",
        request=CustomerWriteSerializer(partial=True),
        responses=responses({200: CustomerSerializer}, 400, 404),
    )
    def patch(self, request: Request, external_id: str) -> Response:
        """Change the given fields; traits are merged key by key (null removes a trait)."""
        customer = _customer_or_404(external_id)
        data = CustomerWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        customer = customer_update(customer=customer, changes=data.validated_data)
        return Response(CustomerSerializer(customer).data)


@extend_schema(tags=["customers"], parameters=[EXTERNAL_ID])
class CustomerEventsApi(GenericAPIView):
    serializer_class = EventSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(
        operation_id="customers_events_list",
        parameters=[EventFilterSerializer],
        responses=responses({200: EventSerializer(many=True)}, 400, 404),
    )
    def get(self, request: Request, external_id: str) -> Response:
        """A customer's events, newest first, optionally of one type or name."""
        customer = _customer_or_404(external_id)
        filters = EventFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = customer_events(
            customer=customer,
            event_type=filters.validated_data.get("type"),
            name=filters.validated_data.get("name"),
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventSerializer(page, many=True).data)


@extend_schema(tags=["api keys"])
class ApiKeyListApi(GenericAPIView):
    serializer_class = ApiKeySerializer
    pagination_class = PagePagination
    required_scope = ApiKey.Scope.ADMIN

    @extend_schema(
        operation_id="api_keys_list", responses=responses({200: ApiKeySerializer(many=True)})
    )
    def get(self, request: Request) -> Response:
        """Every key, newest first. Secrets are never shown again after creation."""
        page = self.paginate_queryset(api_key_list())
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateSerializer,
        responses=responses({201: ApiKeyCreatedSerializer}, 400),
    )
    def post(self, request: Request) -> Response:
        """Create a key. The response holds the secret (``key``), the only time it is shown."""
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw_key = api_key_create(
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            created_by=f"API key {request.auth.prefix}",
        )
        api_key.key = raw_key
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["api keys"], parameters=[KEY_ID])
class ApiKeyDetailApi(GenericAPIView):
    serializer_class = ApiKeySerializer
    required_scope = ApiKey.Scope.ADMIN

    @extend_schema(
        operation_id="api_keys_retrieve", responses=responses({200: ApiKeySerializer}, 404)
    )
    def get(self, request: Request, id: int) -> Response:
        """One key (never its secret)."""
        return Response(ApiKeySerializer(_api_key_or_404(id)).data)


@extend_schema(tags=["api keys"], parameters=[KEY_ID])
class ApiKeyRevokeApi(GenericAPIView):
    serializer_class = ApiKeySerializer
    required_scope = ApiKey.Scope.ADMIN

    @extend_schema(
        operation_id="api_keys_revoke",
        request=None,
        responses=responses({200: ApiKeySerializer}, 404),
    )
    def post(self, request: Request, id: int) -> Response:
        """Revoke a key at once. Revoking a revoked key changes nothing."""
        api_key = api_key_revoke(api_key=_api_key_or_404(id))
        return Response(ApiKeySerializer(api_key).data)
