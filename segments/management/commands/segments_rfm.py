from django.core.management.base import BaseCommand

from segments.management.commands.segments_score import _moment
from segments.ml.rfm import rfm_refresh


class Command(BaseCommand):
    help = "Refresh every customer's RFM scores (the schedule does it when a segment uses rfm)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", type=_moment, default=None,
            help="Act as if it were this moment (ISO 8601, e.g. 2026-03-10T12:00:00Z); default now.",
        )  # fmt: skip

    def handle(self, *args, as_of, **options):
        scored = rfm_refresh(now=as_of)
        self.stdout.write(f"RFM scores refreshed for {scored} customers with an order")
