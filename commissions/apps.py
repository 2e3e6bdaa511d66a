from django.apps import AppConfig


class CommissionsConfig(AppConfig):
    name = "commissions"
    verbose_name = "Commissions"

    def ready(self):
        from . import event_schema  # noqa: F401 (registers the events' schema extension)
