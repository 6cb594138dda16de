"""The journeys REST API, included under /api/v1/."""

from django.urls import path

from journeys import api

urlpatterns = [
    path("journeys/", api.JourneyListApi.as_view(), name="journeys-list"),
    path("journeys/validate/", api.JourneyValidateApi.as_view(), name="journeys-validate"),
    path("journeys/import/", api.JourneyImportApi.as_view(), name="journeys-import"),
    path("journeys/<int:id>/", api.JourneyDetailApi.as_view(), name="journeys-detail"),
    path("journeys/<int:id>/publish/", api.JourneyPublishApi.as_view(), name="journeys-publish"),
    path("journeys/<int:id>/pause/", api.JourneyPauseApi.as_view(), name="journeys-pause"),
    path("journeys/<int:id>/resume/", api.JourneyResumeApi.as_view(), name="journeys-resume"),
    path("journeys/<int:id>/archive/", api.JourneyArchiveApi.as_view(), name="journeys-archive"),
    path("journeys/<int:id>/export/", api.JourneyExportApi.as_view(), name="journeys-export"),
    path("journeys/<int:id>/enrolments/", api.JourneyEnrolApi.as_view(), name="journeys-enrol"),
    path("journeys/<int:id>/dry-run/", api.JourneyDryRunApi.as_view(), name="journeys-dry-run"),
    path("journeys/<int:id>/migrate/", api.JourneyMigrateApi.as_view(), name="journeys-migrate"),
    path("enrolments/<int:id>/", api.EnrolmentDetailApi.as_view(), name="enrolments-detail"),
]
