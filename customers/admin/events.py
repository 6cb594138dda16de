from django.contrib import admin
from django.db.models import Q

from customers.admin.display import pretty_json
from customers.admin.paginators import EstimatedCountPaginator
from customers.models import Event
from customers.selectors import event_names


class EventNameFilter(admin.SimpleListFilter):
    """Event names from the selector, capped, rather than every distinct value."""

    title = "name"
    parameter_name = "name"

    def lookups(self, request, model_admin):
        return [(name, name) for name in event_names()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(name=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Events are facts that happened: shown, never edited here."""

    list_display = ["timestamp", "type", "name", "customer", "received_at", "message_id"]
    list_filter = ["type", EventNameFilter]
    list_select_related = ["customer"]
    date_hierarchy = "timestamp"
    search_fields = ["=message_id", "=customer__external_id"]
    search_help_text = "An exact message id or customer external id."
    # Newest received first, by primary key: an index walk. Ordering by timestamp would
    # sort the whole table (no index on timestamp alone); the column still sorts on click.
    ordering = ["-pk"]
    # Counting millions of events on every page is slow; the count is not worth it.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    raw_id_fields = ["customer", "api_key"]
    fields = [
        "customer",
        "type",
        "name",
        "timestamp",
        "received_at",
        "handed_over_at",
        "message_id",
        "api_key",
        "properties_pretty",
        "context_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        # Exact matches on indexed columns (the default "=" lookup is iexact: no index).
        search_term = search_term.strip()
        if not search_term:
            return queryset, False
        matching = Q(message_id=search_term) | Q(customer__external_id=search_term)
        return queryset.filter(matching), False

    @admin.display(description="properties")
    def properties_pretty(self, event: Event) -> str:
        return pretty_json(event.properties)

    @admin.display(description="context")
    def context_pretty(self, event: Event) -> str:
        return pretty_json(event.context)
