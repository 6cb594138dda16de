from django.urls import path

from customers.ingest import views

urlpatterns = [
    path("identify", views.identify, name="ingest-identify"),
    path("track", views.track, name="ingest-track"),
    path("page", views.page, name="ingest-page"),
    path("screen", views.screen, name="ingest-screen"),
    path("group", views.group, name="ingest-group"),
    path("alias", views.alias, name="ingest-alias"),
    path("batch", views.batch, name="ingest-batch"),
    path("import", views.batch, name="ingest-import"),
    # analytics.js posts to {apiHost}/t, /i, /p, ... with apiHost "<host>/v1".
    path("t", views.track),
    path("i", views.identify),
    path("p", views.page),
    path("s", views.screen),
    path("g", views.group),
    path("a", views.alias),
    path("b", views.batch),
]
