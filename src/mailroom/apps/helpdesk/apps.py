from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "mailroom.apps.helpdesk"
    label = "helpdesk"
