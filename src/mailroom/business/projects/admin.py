from django.contrib import admin
from django.db.models import Count, Q

from mailroom.business.projects import services
from mailroom.business.projects.models import Project, Task
from mailroom.chatter.admin_base import RecordAdmin
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each


@admin.register(Project)
class ProjectAdmin(RecordAdmin):
    list_display = ("name", "partner", "user", "alias_name", "open_tasks", "active")
    list_filter = ("active", "user")
    search_fields = ("name", "alias_name", "partner__name")
    autocomplete_fields = ("partner",)
    list_select_related = ("partner", "user")
    fieldsets = (
        (None, {"fields": ("name", "user", "partner", "active")}),
        ("Mail", {"fields": ("alias_name",)}),
        ("Description", {"fields": ("description", "company")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            open_task_count=Count("tasks", filter=~Q(tasks__stage__in=Task.CLOSED_STAGES))
        )

    @admin.display(description="Open tasks", ordering="open_task_count")
    def open_tasks(self, obj) -> int:
        return obj.open_task_count

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_project(obj, actor=request.user)


@admin.register(Task)
class TaskAdmin(RecordAdmin):
    list_display = ("name", "project", "user", "deadline", "priority", "state_chip")
    list_filter = ("stage", "project", "priority", "user")
    search_fields = ("name", "description", "project__name", "partner__name")
    autocomplete_fields = ("partner", "project")
    list_select_related = ("project", "user")
    date_hierarchy = "deadline"
    fieldsets = (
        (None, {"fields": ("name", "project", "stage", "priority")}),
        ("Planning", {"fields": ("user", "deadline", "partner", "company")}),
        ("Description", {"fields": ("description",)}),
    )
    state_field = "stage"
    actions = ["mark_done", "start"]

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_task(obj, actor=request.user)

    @admin.action(description="Mark selected tasks done", permissions=["change"])
    def mark_done(self, request, queryset):
        apply_each(self, request, queryset, services.mark_done, "Tasks done")

    @admin.action(description="Start selected tasks", permissions=["change"])
    def start(self, request, queryset):
        apply_each(self, request, queryset, services.start, "Tasks started")


navigation.add_group("Projects", 50)
navigation.add_model("Projects", "Projects", "folder_open", Project)
navigation.add_model("Projects", "Tasks", "task_alt", Task)
