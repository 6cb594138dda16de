"""Which customer a message belongs to: identify links ids, alias merges profiles.

The resolver works on a whole batch: it loads every id the batch names in one query,
creates the profiles of new user ids in one statement, and only then walks the messages
in order for the links and merges that depend on what came before.
"""

from django.db import IntegrityError, connection, transaction

from customers.ingest.messages import Message
from customers.models import Customer, Identity
from customers.services.merge import customer_merge
from customers.services.prepared import prepared_cursor

USER = Identity.Kind.USER_ID.value
ANONYMOUS = Identity.Kind.ANONYMOUS_ID.value


class IdentityResolver:
    def __init__(self) -> None:
        self.customer_of: dict[tuple[str, str], int] = {}
        self.external_id_of: dict[int, str | None] = {}
        self._seen_at = None

    # -- loading -----------------------------------------------------------------------

    def preload(self, messages: list[Message]) -> None:
        self.load(messages)
        self._create_new_users(messages)

    def load(self, messages: list[Message]) -> None:
        """Read every id the messages name, with its customer, in one query."""
        pairs = set()
        for message in messages:
            if message.user_id:
                pairs.add((USER, message.user_id))
            if message.anonymous_id:
                pairs.add((ANONYMOUS, message.anonymous_id))
            if message.previous_id:
                pairs.add((USER, message.previous_id))
                pairs.add((ANONYMOUS, message.previous_id))
        if not pairs:
            return
        kinds, values = zip(*pairs, strict=True)
        with prepared_cursor() as cursor:
            # unnest, not json_to_recordset: the planner guesses 10 rows for it (100 for
            # the JSON function, which made it scan the whole identity table).
            cursor.execute(
                """
                SELECT i.kind, i.value, c.id, c.external_id
                FROM unnest(%s::text[], %s::text[]) AS wanted(kind, value)
                JOIN customers_identity i ON i.kind = wanted.kind AND i.value = wanted.value
                JOIN customers_customer c ON c.id = i.customer_id
                """,
                [list(kinds), list(values)],
            )
            for kind, value, customer_id, external_id in cursor.fetchall():
                self.customer_of[(kind, value)] = customer_id
                self.external_id_of[customer_id] = external_id

    def known_customer(self, message: Message) -> int | None:
        """The customer a message belongs to when that needs no write: its ids are all
        known and agree. None when resolving it would create, link or merge."""
        by_user = self.customer_of.get((USER, message.user_id)) if message.user_id else None
        by_anonymous = (
            self.customer_of.get((ANONYMOUS, message.anonymous_id))
            if message.anonymous_id
            else None
        )
        if message.user_id and message.anonymous_id:
            return by_user if by_user is not None and by_user == by_anonymous else None
        return by_user if message.user_id else by_anonymous

    def _create_new_users(self, messages: list[Message]) -> None:
        """Create, in one statement, the profiles of user ids seen for the first time."""
        new_user_ids: dict[str, str | None] = {}
        seen_at: dict[str, object] = {}
        for message in messages:
            user_id = message.user_id
            if message.type == "alias" or not user_id or (USER, user_id) in self.customer_of:
                continue
            anonymous_id = message.anonymous_id
            if anonymous_id and (ANONYMOUS, anonymous_id) in self.customer_of:
                continue  # the anonymous profile may be upgraded: decided in order
            new_user_ids.setdefault(user_id, anonymous_id)
            seen_at[user_id] = min(seen_at.get(user_id, message.timestamp), message.timestamp)
        if not new_user_ids:
            return
        user_ids = list(new_user_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO customers_customer
                    (external_id, email, phone, timezone, locale, traits,
                     first_seen, last_seen, created_at, updated_at)
                SELECT u.id, '', '', '', '', '{}'::jsonb, u.seen, u.seen, now(), now()
                FROM unnest(%s::text[], %s::timestamptz[]) AS u(id, seen)
                ON CONFLICT (external_id) DO NOTHING
                """,
                [user_ids, [seen_at[user_id] for user_id in user_ids]],
            )
            # Ours, or one a concurrent request created first: either way, the one row.
            cursor.execute(
                "SELECT id, external_id FROM customers_customer WHERE external_id = ANY(%s)",
                [user_ids],
            )
            created = dict((external_id, pk) for pk, external_id in cursor.fetchall())
            links = [(USER, user_id, created[user_id]) for user_id in user_ids]
            links += [
                (ANONYMOUS, anonymous_id, created[user_id])
                for user_id, anonymous_id in new_user_ids.items()
                if anonymous_id
            ]
            kinds, values, customer_ids = zip(*links, strict=True)
            cursor.execute(
                """
                INSERT INTO customers_identity (kind, value, customer_id, created_at)
                SELECT *, now() FROM unnest(%s::text[], %s::text[], %s::bigint[])
                ON CONFLICT (kind, value) DO NOTHING
                """,
                [list(kinds), list(values), list(customer_ids)],
            )
        for user_id, customer_id in created.items():
            self.customer_of[(USER, user_id)] = customer_id
            self.external_id_of[customer_id] = user_id
        # An anonymous id a concurrent request linked elsewhere keeps that link.
        unlinked = [
            a for a in new_user_ids.values() if a and (ANONYMOUS, a) not in self.customer_of
        ]
        for kind, value, customer_id in Identity.objects.filter(
            kind=ANONYMOUS, value__in=unlinked
        ).values_list("kind", "value", "customer_id"):
            self.customer_of[(kind, value)] = customer_id

    # -- resolving one message ---------------------------------------------------------

    def resolve(self, message: Message) -> int:
        self._seen_at = message.timestamp
        if message.type == "alias":
            return self._alias(previous_id=message.previous_id, user_id=message.user_id)
        user_id, anonymous_id = message.user_id, message.anonymous_id
        by_user = self.customer_of.get((USER, user_id)) if user_id else None
        by_anonymous = self.customer_of.get((ANONYMOUS, anonymous_id)) if anonymous_id else None

        if user_id and anonymous_id:
            if by_user and by_anonymous:
                if by_user != by_anonymous:
                    if self.external_id_of.get(by_anonymous) is None:
                        self._merge(source_id=by_anonymous, target_id=by_user)
                    else:
                        # A shared device: the anonymous id moves on, the history stays.
                        self._link(ANONYMOUS, anonymous_id, by_user)
                return by_user
            if by_user:
                self._link(ANONYMOUS, anonymous_id, by_user)
                return by_user
            if by_anonymous:
                if self.external_id_of.get(by_anonymous) is None and self._upgrade(
                    by_anonymous, user_id
                ):
                    return by_anonymous
                customer_id = self._user_customer(user_id)
                self._link(ANONYMOUS, anonymous_id, customer_id)
                return customer_id
            customer_id = self._user_customer(user_id)
            self._link(ANONYMOUS, anonymous_id, customer_id)
            return customer_id
        if user_id:
            return by_user or self._user_customer(user_id)
        return by_anonymous or self._anonymous_customer(anonymous_id)

    def _alias(self, *, previous_id: str, user_id: str) -> int:
        previous = self.customer_of.get((USER, previous_id)) or self.customer_of.get(
            (ANONYMOUS, previous_id)
        )
        target = self.customer_of.get((USER, user_id))
        if previous is None:
            target = target or self._user_customer(user_id)
            self._link(ANONYMOUS, previous_id, target)
            return target
        if target is None:
            if self.external_id_of.get(previous) is None and self._upgrade(previous, user_id):
                return previous
            target = self._user_customer(user_id)
        if previous != target:
            self._merge(source_id=previous, target_id=target)
        return target

    # -- writes ------------------------------------------------------------------------

    def _user_customer(self, user_id: str) -> int:
        customer, _ = Customer.objects.get_or_create(
            external_id=user_id, defaults={"first_seen": self._seen_at, "last_seen": self._seen_at}
        )
        Identity.objects.get_or_create(kind=USER, value=user_id, defaults={"customer": customer})
        self.customer_of[(USER, user_id)] = customer.pk
        self.external_id_of[customer.pk] = user_id
        return customer.pk

    def _anonymous_customer(self, anonymous_id: str) -> int:
        with transaction.atomic():
            customer = Customer.objects.create(first_seen=self._seen_at, last_seen=self._seen_at)
            identity, created = Identity.objects.get_or_create(
                kind=ANONYMOUS, value=anonymous_id, defaults={"customer": customer}
            )
            if not created:  # a concurrent request was first
                customer.delete()
        self.customer_of[(ANONYMOUS, anonymous_id)] = identity.customer_id
        self.external_id_of.setdefault(identity.customer_id, None)
        return identity.customer_id

    def _link(self, kind: str, value: str, customer_id: int) -> None:
        Identity.objects.update_or_create(
            kind=kind, value=value, defaults={"customer_id": customer_id}
        )
        self.customer_of[(kind, value)] = customer_id

    def _upgrade(self, customer_id: int, user_id: str) -> bool:
        """Give an anonymous profile its user id. False if another profile took it first."""
        try:
            with transaction.atomic():
                updated = Customer.objects.filter(pk=customer_id, external_id=None).update(
                    external_id=user_id
                )
                if not updated:
                    return False
                Identity.objects.create(kind=USER, value=user_id, customer_id=customer_id)
        except IntegrityError:
            return False
        self.customer_of[(USER, user_id)] = customer_id
        self.external_id_of[customer_id] = user_id
        return True

    def _merge(self, *, source_id: int, target_id: int) -> None:
        customer_merge(source_id=source_id, target_id=target_id)
        for key, customer_id in self.customer_of.items():
            if customer_id == source_id:
                self.customer_of[key] = target_id
        if self.external_id_of.get(target_id) is None:
            self.external_id_of[target_id] = self.external_id_of.get(source_id)
        self.external_id_of.pop(source_id, None)
