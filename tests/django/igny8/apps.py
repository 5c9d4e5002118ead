from django.apps import AppConfig


class Igny8Config(AppConfig):
    name = "igny8"
    default_auto_field = "django.db.models.BigAutoField"
