from django.contrib import admin

from restapi.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "username", "created_at", "expiration_date", "collected_at"]
    list_filter = ["collected_at"]
    search_fields = ["username"]
    # Texts are for their recipients: an operator sees when and for whom, never what.
    fields = ["username", "created_at", "expiration_date", "collected_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        # Messages are created through the API, which applies the clock and the rules.
        return False
