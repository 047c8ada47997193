from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "mailroom.automation"
    label = "automation"
    verbose_name = "Automated emails"

    def ready(self) -> None:
        """Listen to every business record saved through chatter.services.save_record."""
        # ready(): models cannot load before the app registry
        from django.db.models.signals import post_delete, post_save

        from mailroom.automation import rule_cache, triggers
        from mailroom.automation.models import AutomationRule
        from mailroom.chatter.services import record_saved

        record_saved.connect(triggers.on_record_saved, dispatch_uid="automation.rules")
        # every write of a rule (services, admin, a test's ORM create) forgets the cache
        for signal in (post_save, post_delete):
            signal.connect(rule_cache.rules_changed, sender=AutomationRule,
                           dispatch_uid=f"automation.rule_cache.{signal is post_save}")
