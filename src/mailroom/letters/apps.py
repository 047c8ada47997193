from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "mailroom.letters"
    label = "letters"
    verbose_name = "Postal letters"

    def ready(self) -> None:
        from mailroom.letters import admin_buttons, automation_action, home, inbox

        admin_buttons.register()
        home.register()
        inbox.register()
        automation_action.register()
