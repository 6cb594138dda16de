"""The consent REST API under /api/v1/customers/{external_id}/consent/: thin views."""

from django.db import transaction
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from consent.models import ConsentEvent
from consent.selectors import consent_overview, customer_by_external_id
from consent.serializers import (
    ConsentEventCreateSerializer,
    ConsentEventSerializer,
    ConsentOverviewSerializer,
    ConsentPutSerializer,
)
from consent.services.ledger import ConsentError, consent_record
from consent.services.preferences import consent_set
from consent.services.privacy import customer_export
from customers.api import EXTERNAL_ID_HELP
from customers.models import ApiKey, Customer
from customers.serializers import is_valid_external_id

EXTERNAL_ID = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description=EXTERNAL_ID_HELP
)
_ERRORS = {
    400: OpenApiResponse(description="Invalid input: each field at fault with the reason."),
    404: OpenApiResponse(description="No customer with this id."),
}


def _customer(external_id: str) -> Customer:
    if not is_valid_external_id(external_id):
        raise Http404("no customer with this id")  # a NUL byte would be refused by PostgreSQL
    customer = customer_by_external_id(external_id=external_id)
    if customer is None:
        raise Http404("no customer with this id")
    return customer


def _actor(request: Request) -> str:
    return f"API key {request.auth.prefix}" if request.auth is not None else ""


def _bad(error: ConsentError, prefix: str = "") -> ValidationError:
    # Nested like DRF's own errors: "consents.1.topic" -> {"consents": {"1": {"topic": [...]}}}
    detail: dict | list = [error.message]
    for part in reversed((prefix + error.field).split(".")):
        detail = {part: detail}
    return ValidationError(detail)


def _overview(customer: Customer) -> dict:
    return ConsentOverviewSerializer(
        {"customer": customer.external_id, "channels": consent_overview(customer_id=customer.pk)}
    ).data


class ConsentApi(GenericAPIView):
    serializer_class = ConsentPutSerializer

    @extend_schema(
        parameters=[EXTERNAL_ID],
        responses={200: ConsentOverviewSerializer, **_ERRORS},
        summary="The customer's current consent, per channel and topic",
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(_overview(_customer(external_id)))

    @extend_schema(
        parameters=[EXTERNAL_ID],
        request=ConsentPutSerializer,
        responses={200: ConsentOverviewSerializer, **_ERRORS},
        summary="Set consent; one ledger row per change, all or nothing",
    )
    def put(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        serializer = ConsentPutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            consent_set(
                customer_id=customer.pk,
                changes=[
                    (change["channel"], change["topic"], change["status"] == "granted")
                    for change in serializer.validated_data["consents"]
                ],
                evidence=serializer.validated_data.get("evidence", {}),
                actor=_actor(request),
            )
        except ConsentError as error:
            raise _bad(error, "consents.") from None
        return Response(_overview(customer))


class LedgerPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-occurred_at", "-id")


class ConsentEventsApi(GenericAPIView):
    serializer_class = ConsentEventSerializer
    pagination_class = LedgerPagination

    @extend_schema(
        parameters=[EXTERNAL_ID],
        responses={200: ConsentEventSerializer(many=True), **_ERRORS},
        summary="The customer's consent ledger, newest first",
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        rows = ConsentEvent.objects.filter(customer=customer).select_related("topic")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ConsentEventSerializer(page, many=True).data)

    @extend_schema(
        parameters=[EXTERNAL_ID],
        request=ConsentEventCreateSerializer,
        responses={201: ConsentEventSerializer, **_ERRORS},
        summary="Append a row to the customer's consent ledger",
    )
    def post(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        serializer = ConsentEventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                event = consent_record(
                    customer_id=customer.pk,
                    channel=data["channel"],
                    topic_key=data["topic"],
                    action=data["action"],
                    source=data["source"],
                    evidence=data.get("evidence", {}),
                    actor=_actor(request),
                    occurred_at=data.get("occurred_at"),
                )
        except ConsentError as error:
            raise _bad(error) from None
        return Response(ConsentEventSerializer(event).data, status=status.HTTP_201_CREATED)


class CustomerExportApi(GenericAPIView):
    """Everything held about the customer, as one JSON document (the request is recorded)."""

    required_scope = ApiKey.Scope.ADMIN

    @extend_schema(
        parameters=[EXTERNAL_ID],
        responses={200: OpenApiTypes.OBJECT, **_ERRORS},
        summary="Export everything held about the customer (needs the admin scope)",
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        document = customer_export(
            customer_id=customer.pk, requested_by=_actor(request), channel="api"
        )
        return Response(document)
