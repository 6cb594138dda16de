from django.contrib import admin

from journeys.models import Enrolment, EnrolmentTransition


class TransitionInline(admin.TabularInline):
    model = EnrolmentTransition
    fields = ["created_at", "from_step", "to_step", "reason", "actor", "data"]
    readonly_fields = fields
    ordering = ["id"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    """Read-only: one customer's way through a journey, every move with its reason."""

    list_display = [
        "id",
        "customer",
        "journey",
        "version",
        "status",
        "current_step",
        "wake_at",
        "entered_at",
        "converted_at",
    ]
    list_filter = ["status", "holdout", "journey"]
    search_fields = ["=customer__external_id", "=id"]
    list_select_related = ["customer", "journey", "version__journey"]
    date_hierarchy = "entered_at"
    inlines = [TransitionInline]
    readonly_fields = [
        "journey",
        "version",
        "customer",
        "status",
        "current_step",
        "wake_at",
        "awaited_event",
        "trigger_payload",
        "holdout",
        "entered_at",
        "finished_at",
        "converted_at",
        "state",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
