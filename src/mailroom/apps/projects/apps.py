from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "mailroom.apps.projects"
    label = "projects"
