"""My activities: the back-office list of activities, scoped to the user's companies, showing
the signed-in user's planned ones unless a filter says otherwise.

Activities are scheduled on a record (its chatter panel) or through the API; this list only
reads them and offers Mark done / Cancel, which call the services."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import DateField, Value
from django.utils import timezone
from django.utils.html import format_html
from unfold.decorators import display

from mailroom.activities import services
from mailroom.activities.mail import record_url
from mailroom.activities.models import Activity, ActivityType
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each
from mailroom.core.admin_base import CompanyScopedAdmin

URGENCY_COLOURS = {"overdue": "danger", "today": "warning", "planned": "success",
                   "closed": "info"}


class DefaultChoiceFilter(admin.SimpleListFilter):
    """A filter whose unset value means `default` (not "All"); "All" is a choice of its own."""

    default = ""
    all_label = "All"

    def value(self):
        return super().value() or self.default

    def choices(self, changelist):
        for lookup, title in [*self.lookup_choices, ("all", self.all_label)]:
            yield {"selected": self.value() == str(lookup),
                   "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                   "display": title}


class AssigneeFilter(DefaultChoiceFilter):
    title = "assigned to"
    parameter_name = "assigned"
    default = "mine"
    all_label = "Anyone"

    def lookups(self, request, model_admin):
        return [("mine", "Me")]

    def queryset(self, request, queryset):
        return queryset.filter(assignee=request.user) if self.value() == "mine" else queryset


class DueFilter(DefaultChoiceFilter):
    """Planned activities by urgency (the default: every planned one), or the closed ones."""

    title = "due"
    parameter_name = "due"
    default = "planned"
    all_label = "Any state"

    def lookups(self, request, model_admin):
        return [("planned", "Planned (all)"), ("overdue", "Overdue"), ("today", "Today"),
                ("later", "Later"), ("closed", "Done or closed")]

    def queryset(self, request, queryset):
        today = services.user_today(request.user)
        planned = queryset.filter(state=Activity.State.PLANNED)
        return {"planned": planned, "overdue": planned.filter(due_date__lt=today),
                "today": planned.filter(due_date=today),
                "later": planned.filter(due_date__gt=today),
                "closed": queryset.exclude(state=Activity.State.PLANNED)}.get(self.value(),
                                                                              queryset)


class TypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return ActivityType.choices

    def queryset(self, request, queryset):
        return queryset.filter(activity_type=self.value()) if self.value() else queryset


@admin.register(Activity)
class ActivityAdmin(CompanyScopedAdmin):
    list_display = ("summary", "type_label", "record_link", "due_chip", "assignee",
                    "state_label")
    list_filter = (AssigneeFilter, DueFilter, TypeFilter)
    list_filter_submit = False
    search_fields = ("summary", "note")
    ordering = ("due_date", "pk")
    list_per_page = 50
    actions = ("mark_done", "cancel_selected")
    fields = ("company", "activity_type", "summary", "note", "due_date", "assignee",
              "requested_by", "state", "feedback", "created_at", "done_at", "done_by")

    def get_queryset(self, request):
        # every company of the user, not only the current one: "my activities" are all mine
        # the viewer's today rides along on each row for the Due chip (the admin instance is
        # shared between requests, so it cannot hold the user)
        return (Activity.objects.for_user(request.user)
                .select_related("assignee", "content_type", "company")
                .annotate(viewer_today=Value(services.user_today(request.user),
                                             output_field=DateField())))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "My activities",
                                                  **(extra_context or {})})

    def has_add_permission(self, request):
        return False  # scheduled on a record, where the activity belongs

    def has_change_permission(self, request, obj=None):
        return False  # completed through the actions and the record's panel (services)

    def has_delete_permission(self, request, obj=None):
        return False  # cancelled, never deleted: the record's history keeps what was planned

    @display(description="Type", ordering="activity_type")
    def type_label(self, obj: Activity) -> str:
        return obj.get_activity_type_display()

    @display(description="Record")
    def record_link(self, obj: Activity):
        record = obj.record
        if record is None:
            return "—"
        return format_html('<a href="{}" class="text-primary-600">{}: {}</a>',
                           record_url(record), record._meta.verbose_name.capitalize(), record)

    @display(description="Due", ordering="due_date", label=URGENCY_COLOURS)
    def due_chip(self, obj: Activity):
        if not obj.is_planned:
            return "closed", f"{obj.due_date:%d %b %Y}"
        urgency = obj.urgency(getattr(obj, "viewer_today", None) or timezone.localdate())
        text = {"overdue": "Overdue", "today": "Today"}.get(urgency, "")
        return urgency, f"{text} · {obj.due_date:%d %b %Y}" if text else f"{obj.due_date:%d %b %Y}"

    @display(description="State", ordering="state")
    def state_label(self, obj: Activity) -> str:
        return obj.get_state_display()

    def has_mark_done_permission(self, request):
        return self.has_view_permission(request)

    def has_cancel_selected_permission(self, request):
        return self.has_view_permission(request)

    @admin.action(description="Mark done", permissions=["mark_done"])
    def mark_done(self, request, queryset):
        apply_each(self, request, queryset, services.mark_done, "Marked done")

    @admin.action(description="Cancel the selected activities",
                  permissions=["cancel_selected"])
    def cancel_selected(self, request, queryset):
        apply_each(self, request, queryset, services.cancel, "Cancelled")


navigation.add_group("Activities", 5)
navigation.add_model("Activities", "My activities", "event_available", Activity)
