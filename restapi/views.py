"""HTTP in and out; the rules live in serializers, services and selectors."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed, NotFound, ParseError, UnsupportedMediaType
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from restapi import schema, selectors, services
from restapi.authentication import (
    CHALLENGE,
    BearerTokenAuthentication,
    PresentsBearerToken,
    refuse,
    require_inbox_access,
)
from restapi.client_connection import client_has_gone
from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from restapi.fast_path import JsonFastPathView
from restapi.message_ids import message_id_from_digits
from restapi.middleware import server_error_response
from restapi.permissions import NotSpeculative
from restapi.renderers import WebPageRenderer
from restapi.selectors import InboxAccess
from restapi.serializers import (
    ClaimedInboxSerializer,
    ClaimSerializer,
    CollectedMessageSerializer,
    InboxSerializer,
    LeaseRequestSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    format_expiration_date,
    validated,
)
from restapi.throttling import ClientAddressRateThrottle, ReadRateThrottle

# nginx's status for a request whose client closed the connection first, which access logs know.
CLIENT_CLOSED_REQUEST = 499


class ApiRootView(APIView):
    """The Ephemeral Messaging Service: short-lived text messages, each handed out once."""

    # JSON first: a client that accepts anything gets the API root, a browser gets the page.
    renderer_classes = [JSONRenderer, WebPageRenderer, BrowsableAPIRenderer]

    @extend_schema(**schema.API_ROOT)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "service": "Ephemeral Messaging Service",
                "endpoints": {
                    "send": {"method": "POST", "url": request.build_absolute_uri(reverse("chat-create"))},
                    "read": {"method": "GET", "url": request.build_absolute_uri("/chat/") + "{id}"},
                    "collect": {"method": "GET", "url": request.build_absolute_uri("/chats/") + "{username}"},
                },
                "docs": request.build_absolute_uri(reverse("api-docs")),
                "schema": request.build_absolute_uri(reverse("api-schema")),
            }
        )


def _json_object(request: Request, *, example: str) -> dict:
    if not isinstance(request.data, dict):
        raise ParseError(f"The request body must be a JSON object, such as {example}.")
    return request.data


def _username(raw: str) -> str:
    """A username from the path, by the same rule as in a body."""
    return validated(InboxSerializer, {"username": raw})["username"]


class MessageCreateView(JsonFastPathView):
    """Send a message: `{"username": ..., "text": ..., "timeout": seconds}`."""

    throttle_classes = [ClientAddressRateThrottle]

    @extend_schema(**schema.SEND)
    def post(self, request: Request) -> Response:
        body = _json_object(request, example='{"username": "ann", "text": "hi"}')
        message = services.create_message(**validated(MessageCreateSerializer, body))
        location = reverse("chat-detail", kwargs={"message_id": message.id})
        return Response({"id": message.id}, status=status.HTTP_201_CREATED, headers={"Location": location})


# HEAD is refused on the reads (405 with Allow: GET, OPTIONS) instead of being
# answered like GET: on a collect it would expire messages nobody receives, and
# on a read by id it would tell whether an id exists without being counted.
READ_METHODS = ["get", "options"]


class NoStoreAPIView(JsonFastPathView):
    """
    A view whose every answer, errors included, carries ``Cache-Control: no-store``.

    A shared cache that kept a read would go on serving a live text after its
    message was collected, and one that kept a collect would hand the same
    messages out twice.
    """

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


class MessageDetailView(NoStoreAPIView):
    """One message by id, expired or not; a claimed inbox's only with its token."""

    authentication_classes = [BearerTokenAuthentication]

    http_method_names = READ_METHODS
    permission_classes = [NotSpeculative]
    throttle_classes = [ReadRateThrottle]

    _read: selectors.MessageRead | None = None

    def _message_read(self) -> selectors.MessageRead:
        if self._read is None:
            self._read = selectors.MessageRead(message_id_from_digits(self.kwargs["message_id"]))
        return self._read

    def sent_with_throttle(self) -> tuple[object, ...]:
        """The hot store's look-up of the message, sent in the throttle's round trip."""
        return (self._message_read().look_up,)

    @extend_schema(**schema.READ)
    def get(self, request: Request, message_id: str) -> Response:
        message = self._message_read().message(request.auth)
        if message is None:
            # The same answer whether the id does not exist or its inbox is claimed
            # and the token is missing or wrong, so that nobody learns which; the
            # challenge says that a token could change the answer (RFC 9110, 11.6.1).
            return Response(
                {"detail": f"No message with id {message_id}."},
                status=status.HTTP_404_NOT_FOUND,
                headers={"WWW-Authenticate": CHALLENGE},
            )
        return Response(MessageSerializer(message).data)


class LeaseEnded(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This lease has ended (or was acknowledged): it holds no messages any more."
    default_code = "lease_ended"


def _inbox_parameters(request: Request, username: str) -> dict:
    data = {"username": username}
    if "wait" in request.query_params:
        data["wait"] = request.query_params["wait"]
    return validated(InboxSerializer, data)


class InboxView(NoStoreAPIView):
    """
    Collect every live message for a username; each one is expired as it is handed out.
    With ``?wait=<seconds>`` an empty inbox is waited on first (restapi.longpoll).
    """

    authentication_classes = [BearerTokenAuthentication]

    http_method_names = READ_METHODS
    permission_classes = [NotSpeculative]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(**schema.COLLECT)
    def get(self, request: Request, username: str) -> Response:
        username = _inbox_parameters(request, username)["username"]
        try:
            collection = services.collect_inbox_with_token(
                username=username, token=request.auth, recipient_gone=functools.partial(client_has_gone, request)
            )
        except services.InboxRefused as refused:
            refuse(refused.authorization)
        except services.CollectAbandoned:
            # Nobody will read this; it is for the access log, and for a client that
            # only half-closed its side and can still read: it learns nothing was collected.
            return Response(
                {"detail": "The connection was closed before the collect ran; nothing was collected."},
                status=CLIENT_CLOSED_REQUEST,
            )
        response = Response(CollectedMessageSerializer(collection.messages, many=True).data)
        response["X-More-Messages"] = "true" if collection.more_waiting else "false"
        return response


def refuse_a_form(request: Request) -> None:
    """
    An empty body takes every default, but not when it is sent as a form: any web
    page can make its visitors' browsers post an empty form (urlencoded, multipart
    or text/plain) to any inbox, and so hide an open inbox's messages again and again.
    """
    media_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if media_type and media_type != "application/json":
        raise UnsupportedMediaType(media_type)


class LeaseCollectionView(NoStoreAPIView):
    """Lease an inbox's messages until acknowledged: `{"seconds": 1..3600, "wait": 0..60}`."""

    # A lease shows an inbox's texts as a collect does, so it spends the same read budget.
    throttle_classes = [ReadRateThrottle]

    authentication_classes = [BearerTokenAuthentication]

    @extend_schema(**schema.LEASE)
    def post(self, request: Request, username: str) -> Response:
        username = _inbox_parameters(request, username)["username"]
        refuse_a_form(request)
        body = request.data
        if not isinstance(body, dict):
            raise ParseError('The request body must be a JSON object, such as {"seconds": 30}.')
        seconds = validated(LeaseRequestSerializer, body)["seconds"]
        authorization = require_inbox_access(request, username)
        lease = services.lease_inbox(username=username, seconds=seconds, authorization=authorization)
        answer = {
            "lease": lease.token,
            "expires_at": format_expiration_date(lease.expires_at) if lease.expires_at else None,
            "messages": CollectedMessageSerializer(lease.messages, many=True).data,
        }
        response = Response(answer, status=status.HTTP_201_CREATED if lease.token else status.HTTP_200_OK)
        if lease.token:
            response["Location"] = reverse("chat-lease", kwargs={"username": username, "lease": lease.token})
        return response


class LeaseView(NoStoreAPIView):
    """Acknowledge a lease: its messages are collected, exactly as a collect would."""

    authentication_classes = [BearerTokenAuthentication]
    # It answers a wrong token apart from a right one, as a read does, so guesses spend the read budget.
    throttle_classes = [ReadRateThrottle]

    @extend_schema(**schema.ACKNOWLEDGE)
    def delete(self, request: Request, username: str, lease: str) -> Response:
        username = _inbox_parameters(request, username)["username"]
        require_inbox_access(request, username)
        try:
            services.acknowledge_lease(username=username, token=lease)
        except services.LeaseNotFound:
            raise NotFound(f"No lease {lease} was given out for this inbox.") from None
        except services.LeaseEnded:
            raise LeaseEnded from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _token_response(username: str, token: str, *, status_code: int, headers: dict | None = None) -> Response:
    return Response(ClaimedInboxSerializer({"username": username, "token": token}).data, status_code, headers=headers)


class InboxClaimView(NoStoreAPIView):
    """
    Claim a username: only the holder of the token returned may read its messages from now on.

    These views answer with no-store (NoStoreAPIView) because a token is shown once: no cache may keep a copy.
    """

    throttle_classes = [ClientAddressRateThrottle]

    @extend_schema(**schema.CLAIM)
    def post(self, request: Request) -> Response:
        body = _json_object(request, example='{"username": "ann"}')
        username = validated(ClaimSerializer, body)["username"]
        try:
            token = services.claim_inbox(username=username)
        except services.CacheUnreachable:
            return Response(
                {"detail": "The claim could not be made safely just now (the cache is unreachable); try again."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        except services.InboxAlreadyClaimed:
            return Response({"detail": f"The inbox {username} is claimed already."}, status=status.HTTP_409_CONFLICT)
        location = reverse("inbox-detail", kwargs={"username": username})
        return _token_response(username, token, status_code=status.HTTP_201_CREATED, headers={"Location": location})


def _require_claim_holder(request: Request, username: str) -> selectors.InboxAuthorization:
    authorization = require_inbox_access(request, _username(username))
    if authorization.access is InboxAccess.OPEN:
        raise NotFound(f"The inbox {authorization.username} is not claimed.")
    return authorization


class ClaimHolderView(NoStoreAPIView):
    """A view that manages a claim: only with the claim's token, throttled like sends."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [PresentsBearerToken]
    throttle_classes = [ClientAddressRateThrottle]


class InboxTokenView(ClaimHolderView):
    """Replace a claimed inbox's token; the old one stops working at once."""

    @extend_schema(**schema.ROTATE)
    def post(self, request: Request, username: str) -> Response:
        authorization = _require_claim_holder(request, username)
        try:
            token = services.rotate_inbox_token(authorization=authorization)
        except services.ClaimChanged:
            raise AuthenticationFailed("The token was replaced or the inbox released meanwhile.") from None
        return _token_response(authorization.username, token, status_code=status.HTTP_200_OK)


class InboxDetailView(ClaimHolderView):
    """Release a claimed inbox: its messages are erased and the name is open again."""

    @extend_schema(**schema.RELEASE)
    def delete(self, request: Request, username: str) -> Response:
        authorization = _require_claim_holder(request, username)
        try:
            services.release_inbox(authorization=authorization)
        except services.ClaimChanged:
            raise AuthenticationFailed("The token was replaced or the inbox released meanwhile.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        return JsonResponse({"detail": "The Host header names a host this service does not serve."}, status=400)
    return JsonResponse({"detail": "Bad request."}, status=400)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {
            "detail": "Not found. The endpoints are POST /chat, GET /chat/<id>, GET /chats/<username>, "
            "POST /chats/<username>/leases, DELETE /chats/<username>/leases/<lease>, "
            "POST /inboxes, POST /inboxes/<username>/token and DELETE /inboxes/<username>."
        },
        status=404,
    )


def server_error(request: HttpRequest) -> JsonResponse:
    return server_error_response(request)
