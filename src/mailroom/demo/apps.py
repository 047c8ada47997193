from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo company and its records (`mailroom demo`), and the mail catcher its outgoing
    server points at: the top floor, it may use them all."""

    name = "mailroom.demo"
    label = "demo"
    verbose_name = "Demo data"

    def ready(self) -> None:
        # ready(): the Home page hint reads the models
        from mailroom.demo import home

        home.register()
