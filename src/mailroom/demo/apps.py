from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo company and its records (`mailroom demo`): the top floor, it may use them all."""

    name = "mailroom.demo"
    label = "demo"
    verbose_name = "Demo data"
