from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "mailroom.automation"
    label = "automation"
    verbose_name = "Automated emails"

    def ready(self) -> None:
        """Listen to every business record saved through chatter.services.save_record."""
        # ready(): models cannot load before the app registry
        from mailroom.automation import triggers
        from mailroom.chatter.services import record_saved

        record_saved.connect(triggers.on_record_saved, dispatch_uid="automation.rules")
