from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "mailroom.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from mailroom.campaigns import admin_nav

        admin_nav.register()
