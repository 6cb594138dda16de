"""What the customers app tells the apps above it. Sent inside the writing transaction."""

from django.dispatch import Signal

# Sent before the merged profile is deleted, so that rows of other apps that point at it
# (consent, memberships, enrolments) can be re-pointed: kwargs source_id, target_id.
customer_merged = Signal()

# Sent when a profile is written one at a time (REST API, admin): kwargs customer_id,
# fields (the names of the fields written). Ingest's own writes arrive as events instead.
customer_profile_changed = Signal()
