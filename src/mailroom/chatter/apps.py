from django.apps import AppConfig


class ChatterConfig(AppConfig):
    name = "mailroom.chatter"
    label = "chatter"
    verbose_name = "Discuss"
