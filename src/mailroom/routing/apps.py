from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "mailroom.routing"
    label = "routing"
    verbose_name = "Mail routing"
