from django.core.management.base import BaseCommand

from consent.services.ledger import consent_state_rebuild


class Command(BaseCommand):
    help = "Recompute the current consent state of every customer from the ledger."

    def add_arguments(self, parser):
        parser.add_argument(
            "--customer",
            type=int,
            action="append",
            dest="customer_ids",
            help="Only this customer id (repeatable).",
        )

    def handle(self, *args, customer_ids=None, **options):
        count = consent_state_rebuild(customer_ids=customer_ids)
        self.stdout.write(f"rebuilt {count} consent state rows from the ledger")
