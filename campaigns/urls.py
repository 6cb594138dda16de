"""Provider callbacks, under /campaigns/ (email tracking webhooks are under /anymail/)."""

from django.urls import path

from campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("sms/twilio/status/", views.twilio_status, name="twilio-status"),
]
