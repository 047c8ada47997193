from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "mailroom.apps.sales"
    label = "sales"
