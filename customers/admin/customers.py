from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from customers.admin.display import compact_json, pretty_json
from customers.admin.paginators import EstimatedCountPaginator
from customers.models import Customer, CustomerMerge, Device, Identity
from customers.selectors import customer_locales, customer_search_condition, customer_timeline


class ContactFilter(admin.SimpleListFilter):
    title = "contact"
    parameter_name = "contact"

    def lookups(self, request, model_admin):
        return [
            ("email", "Has an email address"),
            ("phone", "Has a phone number"),
            ("none", "No email or phone"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "email":
            return queryset.exclude(email="")
        if self.value() == "phone":
            return queryset.exclude(phone="")
        if self.value() == "none":
            return queryset.filter(email="", phone="")
        return queryset


class KnownFilter(admin.SimpleListFilter):
    title = "identified"
    parameter_name = "identified"

    def lookups(self, request, model_admin):
        return [("yes", "Known user id"), ("no", "Anonymous only")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(external_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(external_id__isnull=True)
        return queryset


class LocaleFilter(admin.SimpleListFilter):
    """Locales of recent profiles (a bounded query), not every distinct value in the table."""

    title = "locale"
    parameter_name = "locale"

    def lookups(self, request, model_admin):
        return [(locale, locale) for locale in customer_locales()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(locale=self.value())
        return queryset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class IdentityInline(ReadOnlyInline):
    model = Identity
    fields = ["kind", "value", "created_at"]
    readonly_fields = fields
    ordering = ["pk"]


class DeviceInline(ReadOnlyInline):
    model = Device
    fields = ["platform", "app_id", "short_token", "created_at", "last_seen"]
    readonly_fields = fields
    ordering = ["-last_seen"]

    @admin.display(description="token")
    def short_token(self, device: Device) -> str:
        # Push tokens are long and only useful to the provider: enough to tell them apart.
        token = device.token
        return token if len(token) <= 24 else f"{token[:12]}…{token[-8:]}"


class MergeInline(ReadOnlyInline):
    """The audit trail of alias merges that folded other profiles into this one."""

    model = CustomerMerge
    fk_name = "survivor"
    verbose_name = "merged profile"
    verbose_name_plural = "merged profiles (alias)"
    fields = [
        "merged_external_id",
        "merged_customer_id",
        "merged_ids",
        "events_moved",
        "created_at",
    ]
    readonly_fields = fields
    ordering = ["-created_at"]

    @admin.display(description="ids")
    def merged_ids(self, merge: CustomerMerge) -> str:
        return ", ".join(f"{kind}:{value}" for kind, value in merge.merged_identities)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Profiles are written by ingest and the API: the admin shows them, it does not edit."""

    list_display = ["customer", "email", "phone", "timezone", "locale", "last_seen", "first_seen"]
    list_filter = [
        KnownFilter,
        ContactFilter,
        LocaleFilter,
        ("last_seen", admin.DateFieldListFilter),
    ]
    search_fields = ["external_id", "email"]
    search_help_text = "An email address (exact) or the start of an external id."
    ordering = ["-pk"]
    # Counting millions of profiles on every page load is a full scan: the unfiltered list
    # shows PostgreSQL's estimate, and a search or filter shows no "of N total".
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [IdentityInline, DeviceInline, MergeInline]
    fieldsets = [
        (
            "Profile",
            {"fields": ["external_id", "email", "phone", "timezone", "locale", "traits_pretty"]},
        ),
        ("Activity", {"fields": ["first_seen", "last_seen", "created_at", "updated_at"]}),
        ("Event timeline", {"fields": ["event_timeline"]}),
    ]
    readonly_fields = [
        "external_id",
        "email",
        "phone",
        "timezone",
        "locale",
        "traits_pretty",
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
        "event_timeline",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Erasing a person is a privacy operation (consent ledger, suppression, audit), not
        # a row deletion; and the confirmation page would list every one of their events.
        return False

    def get_search_results(self, request, queryset, search_term):
        # The same indexed search as the REST API, not the admin's default icontains scans.
        condition = customer_search_condition(search_term)
        if condition is None:
            return queryset, False
        return queryset.filter(condition), False

    @admin.display(description="customer", ordering="external_id")
    def customer(self, customer: Customer) -> str:
        return str(customer)

    @admin.display(description="traits")
    def traits_pretty(self, customer: Customer) -> str:
        return pretty_json(customer.traits)

    @admin.display(description="events")
    def event_timeline(self, customer: Customer) -> str:
        events, total = customer_timeline(customer=customer)
        if not events:
            return "No events yet."
        all_events_url = (
            reverse("admin:customers_event_changelist")
            + "?"
            + urlencode({"customer__id__exact": customer.pk})
        )
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:customers_event_change", args=[event.pk]),
                    event.timestamp.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    event.type,
                    event.name,
                    compact_json(event.properties),
                )
                for event in events
            ),
        )
        return format_html(
            '<p class="event-count">Newest {shown} of {total} events. '
            '<a href="{url}">All events of this customer</a></p>'
            '<table class="event-timeline"><thead><tr><th>time</th><th>type</th>'
            "<th>name</th><th>properties</th></tr></thead><tbody>{rows}</tbody></table>",
            shown=len(events),
            total=total,
            url=all_events_url,
            rows=rows,
        )
