"""Customers' pages and provider webhooks, under /consent/."""

from django.urls import path

from consent import views

app_name = "consent"
urlpatterns = [
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("sms/twilio/", views.sms_inbound, name="sms-inbound"),
]
