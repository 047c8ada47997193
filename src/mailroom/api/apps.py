from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "mailroom.api"
    label = "api"
    verbose_name = "API"
