from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "mailroom.letters"
    label = "letters"
    verbose_name = "Postal letters"
