"""Domain errors as OpenAI-shaped HTTP errors, derived from the one gRPC mapping.

:func:`modelrouter.status.to_status` stays the only place that classifies errors; this
module reads its google.rpc ``Status`` (the code, the ``ErrorInfo`` reason, the
``BadRequest`` field, ``RetryInfo`` or the budget's reset time) and picks the HTTP status
from a small table. The body is always ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import datetime

from google.rpc import code_pb2, error_details_pb2

from ..errors import RouterError
from ..status import to_status

log = logging.getLogger(__name__)

#: gRPC code -> HTTP status. FAILED_PRECONDITION is refined by reason below.
HTTP_STATUS = {
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.NOT_FOUND: 404,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.INTERNAL: 500,
}
#: FAILED_PRECONDITION reasons that mean "no model can answer now": 503, like OpenAI's
#: overloaded answers, so that SDKs retry and gateways fail over.
UNAVAILABLE_REASONS = frozenset({"NO_ELIGIBLE_MODEL", "MODEL_UNAVAILABLE"})

#: HTTP status -> OpenAI error ``type``.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


class HttpError(Exception):
    """An error of the HTTP layer itself (malformed JSON, body too large, unknown path)."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def error_body(status: int, message: str, code: str | None, param: str | None = None) -> bytes:
    error = {
        "message": message,
        "type": ERROR_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        ),
        "param": param,
        "code": code,
    }
    return json.dumps({"error": error}).encode()


def http_error(error: Exception) -> tuple[int, bytes, dict[str, str]]:
    """``(status, body, headers)`` for ``error``. Unexpected errors are logged here, with
    their traceback, and reach the caller as an opaque 500."""
    if isinstance(error, HttpError):
        return error.status, error_body(error.status, str(error), error.code, error.param), {}
    if not isinstance(error, RouterError):
        log.error("unexpected error while serving an HTTP request", exc_info=error)
    status = to_status(error)
    reason, param, retry_after = "", None, None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            resets_at = info.metadata.get("resets_at")
            if resets_at and retry_after is None:
                retry_after = _seconds_until(resets_at)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                param = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry_after = info_retry.retry_delay.ToMilliseconds() / 1000.0
    http_status = HTTP_STATUS.get(status.code, 500)
    if status.code == code_pb2.FAILED_PRECONDITION and reason in UNAVAILABLE_REASONS:
        http_status = 503
    if status.code == code_pb2.NOT_FOUND and reason == "MODEL_NOT_FOUND":
        param = "model"
    headers = {}
    if retry_after is not None and http_status in (429, 503):
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    code = reason.lower() or None
    return http_status, error_body(http_status, status.message, code, param), headers


def _seconds_until(iso: str) -> float | None:
    try:
        return max(0.0, datetime.fromisoformat(iso).timestamp() - time.time())
    except ValueError:
        return None
