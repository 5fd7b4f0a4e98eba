"""
The Content-Security-Policy header: django-csp's, with the policy built once per process.

django-csp builds the policy from the settings on every response, twice (the
enforced and the report-only one): about a third of the CPU of a small API
request. Unless a response asks for something of its own (a nonce drawn by a
template, a per-view decorator), the policy is the same every time, so it is
built once and reused; anything else goes through django-csp unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# What django-csp's decorators put on a response to change its policy.
_PER_RESPONSE_ATTRIBUTES = (
    "_csp_exempt",
    "_csp_exempt_ro",
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)


@functools.cache
def _policies() -> tuple[str, str]:
    """The enforced and the report-only policy of the settings, as django-csp builds them."""
    return build_policy(), build_policy(report_only=True)


@receiver(setting_changed)
def _forget_policies(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policies.cache_clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, answering a response that asks for nothing of its own from the built policy."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if (
            settings.DEBUG
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _PER_RESPONSE_ATTRIBUTES)
            or _excluded(request)
        ):
            return super().process_response(request, response)
        enforced, report_only = _policies()
        if enforced and HEADER not in response:
            response[HEADER] = enforced
        if report_only and HEADER_REPORT_ONLY not in response:
            response[HEADER_REPORT_ONLY] = report_only
        # As django-csp does: a template rendered after this point must not draw a nonce the header lacks.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


def _excluded(request: HttpRequest) -> bool:
    """Whether a policy setting excludes this path (django-csp's EXCLUDE_URL_PREFIXES)."""
    return any(
        (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES")
        for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
    )
