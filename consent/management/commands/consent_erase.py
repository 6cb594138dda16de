from django.core.management.base import BaseCommand, CommandError

from consent.management.commands._customer_arg import customer_from_argument
from consent.services.privacy import customer_erase


class Command(BaseCommand):
    help = "Erase a customer's personal data; the consent ledger is kept, stripped (recorded)."

    def add_arguments(self, parser):
        parser.add_argument("customer", help="External id, or #id.")
        parser.add_argument("--by", required=True, help="Who asks (kept in the audit trail).")
        parser.add_argument("--yes", action="store_true", help="Confirm: this cannot be undone.")

    def handle(self, *args, customer, by, yes=False, **options):
        if not by.strip():
            raise CommandError("--by must name who asks for the erasure")
        found = customer_from_argument(customer)
        if not yes:
            raise CommandError(f"erasing customer #{found.pk} cannot be undone: add --yes")
        request = customer_erase(customer_id=found.pk, requested_by=by, channel="command")
        summary = ", ".join(f"{key} {value}" for key, value in request.summary.items())
        self.stdout.write(f"erased customer #{found.pk}: {summary}")
