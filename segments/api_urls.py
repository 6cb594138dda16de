"""The segments REST API, included under /api/v1/."""

from django.urls import path

from segments import api

urlpatterns = [
    path("segments/", api.SegmentListApi.as_view(), name="segments-list"),
    path("segments/preview/", api.RulePreviewApi.as_view(), name="segments-preview"),
    path("segments/<str:key>/", api.SegmentDetailApi.as_view(), name="segments-detail"),
    path("segments/<str:key>/count/", api.SegmentCountApi.as_view(), name="segments-count"),
    path("segments/<str:key>/members/", api.SegmentMembersApi.as_view(), name="segments-members"),
]
