from django.apps import AppConfig


class ActivitiesConfig(AppConfig):
    name = "mailroom.activities"
    label = "activities"
    verbose_name = "Activities"
