from django.urls import re_path

from restapi import views

# Each path is accepted with and without a trailing slash.
urlpatterns = [
    re_path(r"^$", views.ApiRootView.as_view(), name="api-root"),
    re_path(r"^chat/?$", views.MessageCreateView.as_view(), name="chat-create"),
    re_path(r"^chat/(?P<message_id>[0-9]+)/?$", views.MessageDetailView.as_view(), name="chat-detail"),
    re_path(r"^chats/(?P<username>[^/]+)/?$", views.InboxView.as_view(), name="chats"),
    re_path(r"^chats/(?P<username>[^/]+)/leases/?$", views.LeaseCollectionView.as_view(), name="chat-leases"),
    re_path(r"^chats/(?P<username>[^/]+)/leases/(?P<lease>[^/]+)/?$", views.LeaseView.as_view(), name="chat-lease"),
    re_path(r"^inboxes/?$", views.InboxClaimView.as_view(), name="inbox-claim"),
    re_path(r"^inboxes/(?P<username>[^/]+)/token/?$", views.InboxTokenView.as_view(), name="inbox-token"),
    re_path(r"^inboxes/(?P<username>[^/]+)/?$", views.InboxDetailView.as_view(), name="inbox-detail"),
]
