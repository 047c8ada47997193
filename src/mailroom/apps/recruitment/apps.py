from django.apps import AppConfig


class RecruitmentConfig(AppConfig):
    name = "mailroom.apps.recruitment"
    label = "recruitment"
