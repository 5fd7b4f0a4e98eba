"""
The OpenAPI description of the API, served at /api/schema/.

drf-spectacular reads the views and serializers; this package adds what it
cannot see by itself: each operation's status codes, headers and error bodies
(here, used by the views' ``@extend_schema``), and how the custom fields and
the bearer token are described (``fields``). ``tests/test_schema.py`` runs the
schema against the live service, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer

from restapi.authentication import CHALLENGE
from restapi.schema.fields import digits_within, username_schema, wait_description
from restapi.serializers import (
    ApiRootSerializer,
    ClaimedInboxSerializer,
    ClaimSerializer,
    CollectedMessageSerializer,
    CreatedSerializer,
    DetailSerializer,
    FieldErrorsSerializer,
    LeaseRequestSerializer,
    LeaseSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    RequestIdDetailSerializer,
    UsernameField,
)

# A 400 body is either field errors or, for a body that is not a JSON object, a detail.
BAD_REQUEST = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[FieldErrorsSerializer, DetailSerializer],
    resource_type_field_name=None,
)


def _header(
    name: str, *codes: int, description: str, enum: list[str] | None = None, kind: OpenApiTypes = OpenApiTypes.STR
) -> OpenApiParameter:
    """A response header sent with the answers of ``codes``."""
    return OpenApiParameter(
        name, kind, OpenApiParameter.HEADER, response=list(codes), enum=enum, description=description
    )


def _retry_after(*codes: int, why: str) -> OpenApiParameter:
    return _header(
        "Retry-After", *codes, kind=OpenApiTypes.INT, description=f"Seconds to wait before trying again ({why})."
    )


def _no_store(*codes: int, why: str) -> OpenApiParameter:
    return _header("Cache-Control", *codes, enum=["no-store"], description=f"Always no-store: {why}.")


def _detail(description: str) -> OpenApiResponse:
    """An error answered with a ``detail`` only."""
    return OpenApiResponse(DetailSerializer, description=description)


def _path(name: str, schema: Any, description: str | None = None) -> OpenApiParameter:
    return OpenApiParameter(name, schema, OpenApiParameter.PATH, description=description)


NOT_ACCEPTABLE = _detail(
    "The Accept header names an API version this service does not speak, or a media type it "
    "cannot produce. Version 1 is the default; ask for it with `Accept: application/json; version=1`."
)
UNAVAILABLE = OpenApiResponse(
    RequestIdDetailSerializer,
    description="The message store cannot be reached; nothing was changed. Retry after `Retry-After` seconds.",
)
UNAUTHORIZED = _detail(
    "The inbox is claimed and the request carries no token, or not its current one "
    "(a rotated token, another inbox's token, or one from before a release)."
)
SPECULATIVE = _detail(
    "The request announced a prefetch or preview (`Sec-Purpose: prefetch`, `Purpose: prefetch`, "
    "`X-Moz: prefetch` or `X-Purpose: preview`): nothing is read or changed. HEAD is refused with 405."
)
READ_THROTTLED = _detail("Too many reads from this client (CHAT_READ_THROTTLE_RATE); see `Retry-After`.")
TOO_MANY = _detail("Too many requests from this client; see `Retry-After`. Shared with POST /chat.")
NO_INBOX = _detail("The path has no username, or the username contains /.")
BAD_USERNAME = OpenApiResponse(FieldErrorsSerializer, description="The username breaks the username rule.")

DATABASE_RETRY_AFTER = _retry_after(503, why="the message store is unavailable")
READ_RETRY_AFTER = _retry_after(429, why="the client is over its rate of reads")
CLAIMS_RETRY_AFTER = _retry_after(429, why="the client is over its rate, which claims share with sends")
WWW_AUTHENTICATE_401 = _header(
    "WWW-Authenticate",
    401,
    enum=[CHALLENGE],
    description="The Bearer challenge: send the inbox's token as `Authorization: Bearer <token>`.",
)
WWW_AUTHENTICATE_404 = _header(
    "WWW-Authenticate",
    404,
    enum=[CHALLENGE],
    description="A token may change the answer: messages of claimed inboxes are shown only with theirs.",
)
USERNAME = _path("username", username_schema())


def _body_errors(bad_request: str, examples: list[OpenApiExample] | None = None) -> dict[int, OpenApiResponse]:
    """What every endpoint that takes a JSON body answers when the body or the store fails."""
    return {
        400: OpenApiResponse(BAD_REQUEST, description=bad_request, examples=examples),
        406: NOT_ACCEPTABLE,
        413: _detail("The body is larger than the limit (64 KiB by default)."),
        415: _detail("The body is not sent as application/json."),
        503: UNAVAILABLE,
    }


API_ROOT = {
    "summary": "Describe the service and link to its endpoints",
    "description": "A browser asking for text/html gets the web page instead.",
    # The page is for people; the schema describes what API clients get.
    "responses": {(200, "application/json"): ApiRootSerializer, (406, "application/json"): NOT_ACCEPTABLE},
    "parameters": [OpenApiParameter("format", exclude=True)],
}

SEND = {
    "summary": "Send a message",
    "request": MessageCreateSerializer,
    "responses": {
        201: OpenApiResponse(CreatedSerializer, description="Stored for good: the message is committed."),
        **_body_errors(
            "A field is invalid or unknown (each one named, with what is wrong), or the body is not a JSON object.",
            examples=[
                OpenApiExample(
                    "Invalid fields",
                    value={
                        "username": [UsernameField.default_error_messages["invalid"]],
                        "timout": ["Unknown field; this endpoint takes username, text, timeout."],
                    },
                    status_codes=["400"],
                ),
                OpenApiExample(
                    "Not a JSON object",
                    value={"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)"},
                    status_codes=["400"],
                ),
            ],
        ),
        429: _detail("Too many messages from this client; see `Retry-After`."),
    },
    "parameters": [
        _header("Location", 201, description="The new message's path, /chat/{id}."),
        _retry_after(429, why="the client is over its rate of messages"),
        DATABASE_RETRY_AFTER,
    ],
}

READ = {
    "summary": "Read one message by id",
    "description": (
        "Expired and live messages alike, until the retention period purges expired ones. "
        "Reading does not expire a message. A message of a claimed inbox is shown only with that "
        "inbox's current token; a message of an open inbox needs none."
    ),
    "parameters": [
        WWW_AUTHENTICATE_404,
        _path("message_id", {"type": "integer", "minimum": 0}, "The id that POST /chat returned."),
        READ_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        200: OpenApiResponse(MessageSerializer, description="The message, with its expiration date in UTC."),
        403: SPECULATIVE,
        404: _detail(
            "No message has this id, it was purged, or it belongs to a claimed inbox and the request "
            "does not carry that inbox's current token: the answer is the same, so that nobody else "
            "learns whether the id exists."
        ),
        406: NOT_ACCEPTABLE,
        429: READ_THROTTLED,
        503: UNAVAILABLE,
    },
}

COLLECT = {
    "summary": "Collect a username's inbox",
    "description": (
        "Every live message for the username, oldest first. **Collecting expires what it returns**: "
        "each message is handed out once, and its expiration date becomes the time of this read. "
        "An unknown username is an empty inbox. Messages held by a lease are not collected. "
        "A claimed inbox is collected only with its current token."
    ),
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        OpenApiParameter(
            "wait",
            digits_within(0, settings.CHAT["MAX_WAIT"]),
            OpenApiParameter.QUERY,
            description=wait_description("it collects"),
        ),
        _no_store(200, why="a cached answer would hand the same messages out twice"),
        _header(
            "X-More-Messages",
            200,
            enum=["true", "false"],
            description="true when more live messages are waiting than one collection hands out; collect again.",
        ),
        READ_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        200: OpenApiResponse(
            CollectedMessageSerializer(many=True),
            description="The collected messages, now expired; [] when there are none.",
        ),
        400: OpenApiResponse(FieldErrorsSerializer, description="The username or wait is invalid."),
        401: UNAUTHORIZED,
        403: SPECULATIVE,
        404: NO_INBOX,
        406: NOT_ACCEPTABLE,
        429: READ_THROTTLED,
        503: UNAVAILABLE,
    },
}

_SHOWN_ONCE = (
    "The token is shown in this answer only (it is stored as a hash and cannot be shown again): "
    "keep it where you keep passwords. `Cache-Control: no-store`."
)
TOKEN_NO_STORE = _no_store(200, 201, why="the token must not be kept by any cache")

CLAIM = {
    "summary": "Claim an inbox",
    "description": (
        "From now on only the holder of the returned token can collect the inbox or read its messages by id, "
        "those sent before the claim included. Anyone can still send to it. " + _SHOWN_ONCE
    ),
    "request": ClaimSerializer,
    "auth": [],
    "parameters": [
        TOKEN_NO_STORE,
        _header("Location", 201, description="The claimed inbox, /inboxes/{username}: DELETE releases it."),
        CLAIMS_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        201: OpenApiResponse(ClaimedInboxSerializer, description="Claimed. " + _SHOWN_ONCE),
        **_body_errors("The username is invalid, or a field is unknown, or the body is not a JSON object."),
        409: _detail("The inbox is claimed already."),
        429: TOO_MANY,
    },
}

# What rotating and releasing a claimed inbox answer besides their success.
_MANAGED_INBOX_ERRORS = {
    400: BAD_USERNAME,
    401: UNAUTHORIZED,
    404: _detail("The inbox is not claimed (or the path has no username, or it contains /)."),
    406: NOT_ACCEPTABLE,
    429: TOO_MANY,
    503: UNAVAILABLE,
}

ROTATE = {
    "summary": "Replace a claimed inbox's token",
    "description": (
        "Takes the current token and returns a new one; the old token stops working at once, on every server. "
        + _SHOWN_ONCE
    ),
    "request": None,
    "parameters": [USERNAME, TOKEN_NO_STORE, WWW_AUTHENTICATE_401, CLAIMS_RETRY_AFTER, DATABASE_RETRY_AFTER],
    "responses": {
        200: OpenApiResponse(ClaimedInboxSerializer, description="The new token. " + _SHOWN_ONCE),
        **_MANAGED_INBOX_ERRORS,
    },
}

RELEASE = {
    "summary": "Release a claimed inbox",
    "description": (
        "Takes the current token. The inbox's messages, live and expired, are erased in the same "
        "transaction that opens the name again, so none of them is ever shown to anyone else; "
        "anyone may claim the name afterwards."
    ),
    "parameters": [USERNAME, WWW_AUTHENTICATE_401, CLAIMS_RETRY_AFTER, DATABASE_RETRY_AFTER],
    "responses": {
        204: OpenApiResponse(description="Released: the messages are erased and the name is open."),
        **_MANAGED_INBOX_ERRORS,
    },
}

LEASE = {
    "summary": "Lease an inbox's messages until acknowledged",
    "description": (
        "Hands out the username's live messages, oldest first, **without expiring them**: they are hidden "
        "from every collect and every other lease until the lease ends. Acknowledge the lease "
        "(DELETE .../leases/{lease}) once the messages are safe; a lease that ends unacknowledged returns "
        "them to the inbox, except those whose own expiration date passed meanwhile."
    ),
    "request": LeaseRequestSerializer,
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        _header("Location", 201, description="The lease's path, to acknowledge it with DELETE."),
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        201: OpenApiResponse(LeaseSerializer, description="At least one message is leased."),
        200: OpenApiResponse(LeaseSerializer, description='Nothing to lease: {"lease": null, "messages": []}.'),
        401: UNAUTHORIZED,
        **_body_errors("A field is invalid or unknown, or the body is not a JSON object."),
        404: NO_INBOX,
    },
}

ACKNOWLEDGE = {
    "summary": "Acknowledge a lease",
    "description": "Collects the lease's messages exactly as a collect does: each one expires now.",
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        _path("lease", OpenApiTypes.STR, "The id the lease answered."),
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        204: OpenApiResponse(description="Acknowledged: the messages are collected."),
        400: BAD_USERNAME,
        401: UNAUTHORIZED,
        404: _detail("No such lease was given out for this inbox."),
        406: NOT_ACCEPTABLE,
        409: _detail("The lease has ended or was acknowledged already."),
        503: UNAVAILABLE,
    },
}


def without_trailing_slash(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """Name each path as clients should write it: without the optional trailing slash."""
    return [(path.removesuffix("/") or "/", *rest) for path, *rest in endpoints]
