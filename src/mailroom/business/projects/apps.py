from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class ProjectsConfig(AppConfig):
    name = "mailroom.business.projects"
    label = "projects"
    verbose_name = "Projects"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.projects.kpis import register_kpis
        from mailroom.business.projects.models import Task
        from mailroom.templating.actions import register_action

        register(RecordType(
            key="projects.task", label="Task", label_plural="Tasks", model=Task,
            default_alias="tasks", api_slug="tasks",
            template_fields=("name", "stage", "priority", "deadline", "description",
                             "project.name", "partner.name", "partner.email",
                             "user.first_name", "user.last_name", "user.email", "company.name"),
            api_fields=("name", "project_id", "description", "partner_id", "user_id", "stage",
                        "deadline", "priority"),
        ))
        register_action("task_update", "Task update", "projects.task")
        register_kpis()
