"""The one list of message channels, shared by consent and campaigns (and above).

It lives here, in the lower app, so that campaigns and journeys import it from consent
(DESIGN.md: an app imports only the apps below it). Only Django's ``TextChoices`` is
imported, so pure cores may use it too.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push")
    WEBHOOK = "webhook", _("Webhook")


# The channels that reach a customer, so consent applies to them. Webhooks go to a system
# of the operator's, not to a person: there is nothing to consent to.
CONSENT_CHANNELS: tuple[str, ...] = (Channel.EMAIL.value, Channel.SMS.value, Channel.PUSH.value)
CONSENT_CHANNEL_CHOICES: list[tuple[str, str]] = [
    (channel.value, channel.label) for channel in Channel if channel.value in CONSENT_CHANNELS
]
