"""The journeys REST API under /api/v1/journeys/: thin views over selectors and services.

Authentication, scopes and throttling come from the REST_FRAMEWORK settings (``read`` for
safe methods, ``write`` otherwise).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from customers.api import PagePagination, responses
from customers.selectors import customer_get_by_external_id
from journeys.engine import InvalidGraph
from journeys.models import Journey
from journeys.selectors import enrolment_get, journey_list
from journeys.serializers import (
    DryRunRequestSerializer,
    DryRunSerializer,
    EnrolmentSerializer,
    EnrolRequestSerializer,
    JourneySerializer,
    JourneyWriteSerializer,
    MigratedSerializer,
    MigrateSerializer,
    ValidateSerializer,
    ValidationResultSerializer,
    VersionSerializer,
)
from journeys.services.dry_run import journey_dry_run
from journeys.services.enrolments import EnrolmentRefused, journey_enrol
from journeys.services.journeys import (
    JourneyStateError,
    journey_archive,
    journey_create,
    journey_export,
    journey_import,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_update,
    journey_validate,
)
from journeys.services.migration import InvalidMigration, journey_migrate

JOURNEY_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
CONFLICT = {409: OpenApiResponse(description="Not allowed in the journey's current status.")}


def _journey_or_404(journey_id: int) -> Journey:
    journey = journey_list().filter(pk=journey_id).first()
    if journey is None:
        raise Http404
    return journey


def _problems_response(problems) -> Response:
    return Response(
        {"graph": [problem.as_dict() for problem in problems]}, status=status.HTTP_400_BAD_REQUEST
    )


def _conflict(error: Exception) -> Response:
    return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)


def _create_values(data: dict) -> dict:
    values = dict(data)
    values["graph"] = values.pop("graph", {})
    return values


@extend_schema(tags=["journeys"])
class JourneyListApi(GenericAPIView):
    serializer_class = JourneySerializer
    pagination_class = PagePagination

    @extend_schema(
        operation_id="journeys_list", responses=responses({200: JourneySerializer(many=True)})
    )
    def get(self, request: Request) -> Response:
        """Journeys by name."""
        page = self.paginate_queryset(journey_list())
        return self.get_paginated_response(JourneySerializer(page, many=True).data)

    @extend_schema(
        operation_id="journeys_create",
        request=JourneyWriteSerializer,
        responses=responses({201: JourneySerializer}, 400),
    )
    def post(self, request: Request) -> Response:
        """Create a draft journey (its graph is checked when it is published)."""
        data = JourneyWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if Journey.objects.filter(name=data.validated_data["name"]).exists():
            return Response({"name": ["a journey with this name exists"]}, status=400)
        journey = journey_create(**_create_values(data.validated_data))
        return Response(JourneySerializer(journey).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyDetailApi(GenericAPIView):
    serializer_class = JourneySerializer

    @extend_schema(
        operation_id="journeys_retrieve", responses=responses({200: JourneySerializer}, 404)
    )
    def get(self, request: Request, id: int) -> Response:
        return Response(JourneySerializer(_journey_or_404(id)).data)

    @extend_schema(
        operation_id="journeys_update",
        request=JourneyWriteSerializer(partial=True),
        responses=responses({200: JourneySerializer, **CONFLICT}, 400, 404),
    )
    def patch(self, request: Request, id: int) -> Response:
        """Change settings or the draft graph; published versions never change."""
        journey = _journey_or_404(id)
        data = JourneyWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "graph" in changes:
            changes["draft_graph"] = changes.pop("graph")
        try:
            journey = journey_update(journey=journey, changes=changes)
        except JourneyStateError as error:
            return _conflict(error)
        return Response(JourneySerializer(journey).data)


@extend_schema(tags=["journeys"])
class JourneyValidateApi(GenericAPIView):
    serializer_class = ValidateSerializer

    @extend_schema(
        operation_id="journeys_validate",
        request=ValidateSerializer,
        responses=responses({200: ValidationResultSerializer}, 400),
    )
    def post(self, request: Request) -> Response:
        """Check a graph as publishing would: every problem with its step and field."""
        data = ValidateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problems = journey_validate(graph=data.validated_data["graph"])
        return Response(
            {"valid": not problems, "problems": [problem.as_dict() for problem in problems]}
        )


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyPublishApi(GenericAPIView):
    serializer_class = VersionSerializer

    @extend_schema(
        operation_id="journeys_publish",
        request=None,
        responses=responses({201: VersionSerializer, **CONFLICT}, 400, 404),
    )
    def post(self, request: Request, id: int) -> Response:
        """Publish the draft as a new version; new entrants follow it."""
        journey = _journey_or_404(id)
        try:
            version = journey_publish(journey=journey, by=f"api key {request.auth.prefix}")
        except InvalidGraph as invalid:
            return _problems_response(invalid.problems)
        except JourneyStateError as error:
            return _conflict(error)
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


def _status_action(action, operation_id: str, summary: str):
    @extend_schema(
        tags=["journeys"],
        parameters=[JOURNEY_ID],
        operation_id=operation_id,
        request=None,
        responses=responses({200: JourneySerializer, **CONFLICT}, 404),
        description=summary,
    )
    def post(self, request: Request, id: int) -> Response:
        try:
            journey = action(journey=_journey_or_404(id))
        except JourneyStateError as error:
            return _conflict(error)
        return Response(JourneySerializer(journey).data)

    return type(
        f"{operation_id}_view",
        (GenericAPIView,),
        {"post": post, "serializer_class": JourneySerializer},
    )


JourneyPauseApi = _status_action(journey_pause, "journeys_pause", "Stop entries; waits hold.")
JourneyResumeApi = _status_action(journey_resume, "journeys_resume", "Take entries again.")
JourneyArchiveApi = _status_action(
    journey_archive, "journeys_archive", "Close for good; customers inside leave it."
)


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyExportApi(GenericAPIView):
    serializer_class = JourneyWriteSerializer

    @extend_schema(
        operation_id="journeys_export", responses=responses({200: JourneyWriteSerializer}, 404)
    )
    def get(self, request: Request, id: int) -> Response:
        """The journey as code (docs/journeys.md), to keep in version control."""
        return Response(journey_export(journey=_journey_or_404(id)))


@extend_schema(tags=["journeys"])
class JourneyImportApi(GenericAPIView):
    serializer_class = JourneyWriteSerializer

    @extend_schema(
        operation_id="journeys_import",
        request=JourneyWriteSerializer,
        responses=responses({200: JourneySerializer, 201: JourneySerializer, **CONFLICT}, 400),
    )
    def post(self, request: Request) -> Response:
        """Create the journey of this name, or replace its settings and draft graph.

        The graph must be publishable: every problem comes back with its step and field."""
        data = JourneyWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problems = journey_validate(graph=data.validated_data["graph"])
        if problems:
            return _problems_response(problems)
        try:
            journey, created = journey_import(data=data.validated_data)
        except JourneyStateError as error:
            return _conflict(error)
        return Response(
            JourneySerializer(journey).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyEnrolApi(GenericAPIView):
    serializer_class = EnrolRequestSerializer

    @extend_schema(
        operation_id="journeys_enrol",
        request=EnrolRequestSerializer,
        responses=responses(
            {
                201: EnrolmentSerializer,
                409: OpenApiResponse(description="Entry refused: code and reason."),
            },
            400,
            404,
        ),
    )
    def post(self, request: Request, id: int) -> Response:
        """Enter a customer (by user id) with a payload: the API-triggered entry."""
        journey = _journey_or_404(id)
        data = EnrolRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get_by_external_id(external_id=data.validated_data["external_id"])
        if customer is None:
            return Response({"external_id": ["no customer has this user id"]}, status=400)
        try:
            enrolment = journey_enrol(
                journey=journey, customer=customer, payload=data.validated_data["payload"]
            )
        except EnrolmentRefused as refused:
            return Response({"code": refused.code, "detail": str(refused)}, status=409)
        return Response(
            EnrolmentSerializer(enrolment_get(enrolment_id=enrolment.pk)).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["journeys"])
class EnrolmentDetailApi(GenericAPIView):
    serializer_class = EnrolmentSerializer

    @extend_schema(
        operation_id="enrolments_retrieve",
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses=responses({200: EnrolmentSerializer}, 404),
    )
    def get(self, request: Request, id: int) -> Response:
        """An enrolment and every transition it made, oldest first."""
        enrolment = enrolment_get(enrolment_id=id)
        if enrolment is None:
            raise Http404
        return Response(EnrolmentSerializer(enrolment).data)


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyDryRunApi(GenericAPIView):
    serializer_class = DryRunRequestSerializer

    @extend_schema(
        operation_id="journeys_dry_run",
        request=DryRunRequestSerializer,
        responses=responses({200: DryRunSerializer}, 400, 404),
    )
    def post(self, request: Request, id: int) -> Response:
        """Replay a customer's recorded events against the draft (or a given graph): the
        path they would take and the messages they would get. Nothing is sent or stored."""
        journey = _journey_or_404(id)
        data = DryRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        graph = data.validated_data.get("graph", journey.draft_graph)
        problems = journey_validate(graph=graph)
        if problems:
            return _problems_response(problems)
        customer = customer_get_by_external_id(external_id=data.validated_data["external_id"])
        if customer is None:
            return Response({"external_id": ["no customer has this user id"]}, status=400)
        result = journey_dry_run(
            graph=graph,
            customer=customer,
            payload=data.validated_data["payload"],
            until=data.validated_data.get("until"),
            journey_id=journey.pk,
        )
        return Response(DryRunSerializer(result).data)


@extend_schema(tags=["journeys"], parameters=[JOURNEY_ID])
class JourneyMigrateApi(GenericAPIView):
    serializer_class = MigrateSerializer

    @extend_schema(
        operation_id="journeys_migrate",
        request=MigrateSerializer,
        responses=responses({200: MigratedSerializer}, 400, 404),
    )
    def post(self, request: Request, id: int) -> Response:
        """Move the customers inside an old version onto a new one by a step-to-step map.

        Waits keep their due time. Nothing moves unless the whole map is valid."""
        journey = _journey_or_404(id)
        data = MigrateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            moved = journey_migrate(
                journey=journey,
                from_number=data.validated_data["from_version"],
                to_number=data.validated_data["to_version"],
                step_map=data.validated_data["step_map"],
            )
        except InvalidMigration as invalid:
            return Response(
                {"step_map": [problem.as_dict() for problem in invalid.problems]}, status=400
            )
        return Response({"migrated": moved})
