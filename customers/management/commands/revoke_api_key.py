from django.core.management.base import BaseCommand, CommandError

from customers.models import ApiKey
from customers.services.api_keys import KEY_PREFIX, api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the part after `jl_` in the key); it stops working at once."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's public prefix, or the whole key.")

    def handle(self, *args, prefix: str, **options):
        # Accept the whole key too: the prefix is its second part.
        parts = prefix.strip().split("_")
        if len(parts) >= 3 and parts[0] == KEY_PREFIX:
            prefix = parts[1]
        api_key = ApiKey.objects.filter(prefix=prefix.strip()).first()
        if api_key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        if not api_key.is_active:
            self.stdout.write(
                f"API key {api_key.name!r} ({api_key.prefix}) was already revoked "
                f"at {api_key.revoked_at.isoformat()}."
            )
            return
        api_key = api_key_revoke(api_key=api_key)
        self.stdout.write(f"Revoked API key {api_key.name!r} ({api_key.prefix}).")
