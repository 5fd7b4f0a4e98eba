from django.apps import AppConfig


class RestapiConfig(AppConfig):
    name = "restapi"
    verbose_name = "Ephemeral messages"

    def ready(self) -> None:
        # Registers the OpenAPI extensions that describe the custom fields.
        from restapi import schema  # noqa: F401
