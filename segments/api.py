"""The REST API of segments under /api/v1/segments/: thin views over selectors and services."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from customers.api import PagePagination, responses
from segments.models import Segment
from segments.rules import RuleError
from segments.selectors import (
    rule_preview,
    segment_get,
    segment_list,
    segment_member_count,
    segment_members_with_entry,
)
from segments.serializers import (
    RulePreviewResultSerializer,
    RulePreviewSerializer,
    SegmentCountSerializer,
    SegmentCreateSerializer,
    SegmentMemberSerializer,
    SegmentSerializer,
    SegmentUpdateSerializer,
    StaticListResultSerializer,
    StaticListSerializer,
)
from segments.services.definitions import SegmentInvalid, segment_create, segment_update
from segments.services.memberships import segment_static_replace

KEY = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The segment's key."
)


def _segment_or_404(key: str) -> Segment:
    segment = segment_get(key=key)
    if segment is None:
        raise Http404
    return segment


def _refused(error: SegmentInvalid) -> serializers.ValidationError:
    # Rules faults stay a map of JSON path to reason; other fields get DRF's list shape.
    return serializers.ValidationError(
        {
            field: fault if isinstance(fault, dict) else [fault]
            for field, fault in error.errors.items()
        }
    )


@extend_schema(tags=["segments"])
class SegmentListApi(GenericAPIView):
    serializer_class = SegmentSerializer
    pagination_class = PagePagination

    @extend_schema(
        operation_id="segments_list", responses=responses({200: SegmentSerializer(many=True)})
    )
    def get(self, request: Request) -> Response:
        """Segments by name."""
        page = self.paginate_queryset(segment_list())
        return self.get_paginated_response(SegmentSerializer(page, many=True).data)

    @extend_schema(
        operation_id="segments_create",
        request=SegmentCreateSerializer,
        responses=responses({201: SegmentSerializer}, 400),
    )
    def post(self, request: Request) -> Response:
        """Create a segment. An invalid rule is refused with the JSON path of each fault
        (``{"rules": {"$.all[2].event.count.at_least": "must be a whole number ≥ 0"}}``);
        a dynamic segment's members are computed right after."""
        data = SegmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            segment = segment_create(**data.validated_data)
        except SegmentInvalid as error:
            raise _refused(error) from error
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["segments"], parameters=[KEY])
class SegmentDetailApi(GenericAPIView):
    serializer_class = SegmentSerializer

    @extend_schema(
        operation_id="segments_retrieve", responses=responses({200: SegmentSerializer}, 404)
    )
    def get(self, request: Request, key: str) -> Response:
        """One segment."""
        return Response(SegmentSerializer(_segment_or_404(key)).data)

    @extend_schema(
        operation_id="segments_update",
        request=SegmentUpdateSerializer,
        responses=responses({200: SegmentSerializer}, 400, 404),
    )
    def patch(self, request: Request, key: str) -> Response:
        """Change the name, description or rules; a rule change recomputes the members."""
        segment = _segment_or_404(key)
        data = SegmentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            segment = segment_update(segment=segment, **data.validated_data)
        except SegmentInvalid as error:
            raise _refused(error) from error
        return Response(SegmentSerializer(segment).data)


@extend_schema(tags=["segments"], parameters=[KEY])
class SegmentCountApi(GenericAPIView):
    serializer_class = SegmentCountSerializer

    @extend_schema(
        operation_id="segments_count", responses=responses({200: SegmentCountSerializer}, 404)
    )
    def get(self, request: Request, key: str) -> Response:
        """How many customers are in the segment, and how many its rules select right now."""
        segment = _segment_or_404(key)
        matching = None
        if segment.kind in (Segment.Kind.DYNAMIC, Segment.Kind.MODEL):
            matching, _ = rule_preview(rules=segment.rules, now=timezone.now(), sample_size=0)
        return Response(
            {"members": segment_member_count(segment=segment), "matching_now": matching}
        )


@extend_schema(tags=["segments"], parameters=[KEY])
class SegmentMembersApi(GenericAPIView):
    serializer_class = SegmentMemberSerializer
    pagination_class = PagePagination

    @extend_schema(
        operation_id="segments_members_list",
        responses=responses({200: SegmentMemberSerializer(many=True)}, 404),
    )
    def get(self, request: Request, key: str) -> Response:
        """The customers in the segment now, newest member first."""
        page = self.paginate_queryset(segment_members_with_entry(segment=_segment_or_404(key)))
        return self.get_paginated_response(SegmentMemberSerializer(page, many=True).data)

    @extend_schema(
        operation_id="segments_members_replace",
        request=StaticListSerializer,
        responses=responses({200: StaticListResultSerializer}, 400, 404),
    )
    def put(self, request: Request, key: str) -> Response:
        """Replace a static segment's members with a list of external ids or emails."""
        segment = _segment_or_404(key)
        if segment.kind != Segment.Kind.STATIC:
            raise serializers.ValidationError(
                {"detail": f"segment {key} is {segment.kind}; only static segments take a list"}
            )
        data = StaticListSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = segment_static_replace(segment=segment, entries=data.validated_data["entries"])
        return Response(
            {
                "matched": result.matched,
                "entered": result.changes.entered,
                "exited": result.changes.exited,
                "unknown": result.unknown,
            }
        )


@extend_schema(tags=["segments"])
class RulePreviewApi(GenericAPIView):
    serializer_class = RulePreviewSerializer

    @extend_schema(
        operation_id="segments_preview",
        request=RulePreviewSerializer,
        responses=responses({200: RulePreviewResultSerializer}, 400),
    )
    def post(self, request: Request) -> Response:
        """Count a draft rule without storing it, with a sample of the customers it selects."""
        data = RulePreviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            count, sample = rule_preview(rules=data.validated_data["rules"], now=timezone.now())
        except RuleError as error:
            raise serializers.ValidationError({"rules": error.as_dict()}) from error
        return Response(
            {
                "count": count,
                "sample": [customer.external_id or f"#{customer.pk}" for customer in sample],
            }
        )
