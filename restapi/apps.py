from django.apps import AppConfig


class RestapiConfig(AppConfig):
    name = "restapi"
    verbose_name = "Ephemeral messages"

    def ready(self) -> None:
        # Registers the OpenAPI extensions that describe the custom fields, and
        # the deployment's system checks.
        from restapi import checks, schema  # noqa: F401
