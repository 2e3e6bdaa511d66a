"""Guards in front of every view (issue 7, docs/security.md).

`RequestGuardMiddleware` answers a hostile request before any view reads it: a body over
the size limit (413) and a NUL character in the address (400). `QuietClientErrors` keeps
the log to one line for a client's error (4xx): a stack trace is for the site's own faults.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("referral_program.security")

API_PREFIX = "/api/"


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def body_limit(request: HttpRequest) -> int:
    """The largest body this request may carry: file uploads have a limit of their own."""
    if request.content_type == "multipart/form-data":
        return settings.UPLOAD_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class RequestGuardMiddleware:
    """Refuses, before anything reads the request:

    - a body larger than its limit (from Content-Length; the server never reads more than
      that header says): 413. Django itself only checks form bodies, and only when a view
      reads them; the JSON API reads its body as a stream, which Django does not check.
    - a NUL character in the path or the query string: 400. No address of this site
      contains one, and PostgreSQL refuses it in any query it would end up in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads such a body as empty
        limit = body_limit(request)
        if length > limit:
            logger.warning(
                "Refused a body of %d bytes (limit %d): %s %s",
                length,
                limit,
                request.method,
                request.path.encode("unicode_escape").decode("ascii"),
            )
            return _refuse(request, 413, f"The request body is larger than {_megabytes(limit)}.")
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            logger.warning(
                "Refused a NUL character in the address: %s %s",
                request.method,
                request.path.encode("unicode_escape").decode("ascii"),
            )
            return _refuse(request, 400, "The address holds a NUL character.")
        return self.get_response(request)


class QuietClientErrors(logging.Filter):
    """Drops the stack trace of records about a client's error (status 4xx).

    Django logs a refused request (403, 400 for a suspicious operation such as a bad Host
    header) together with the exception that refused it; the one line says what happened,
    and a trace would only make hostile traffic look like a fault of the site.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        suspicious = record.name.startswith("django.security.")
        if record.exc_info and (suspicious or (status is not None and 400 <= status < 500)):
            record.exc_info = None
            record.exc_text = None
        return True
