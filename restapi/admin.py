from django.contrib import admin

from restapi.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "username", "created_at", "expiration_date", "collected_at"]
    list_filter = ["collected_at"]
    search_fields = ["username"]
    readonly_fields = ["username", "text", "created_at", "expiration_date", "collected_at"]

    def has_add_permission(self, request) -> bool:
        # Messages are created through the API, which applies the clock and the rules.
        return False
