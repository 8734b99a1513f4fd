"""Exception documents (RFC 7807 ``application/problem+json``: type, title, status, detail, instance), with the
exception types of OGC API – Processes where the standard defines one."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

__all__ = ["ApiProblem", "problem_response", "problem_doc", "OGC_EXC", "NO_SUCH_JOB", "NO_SUCH_PROCESS",
           "RESULT_NOT_READY", "NO_SUCH_COLLECTION", "NO_SUCH_FEATURE", "PROBLEM_TYPES"]

OGC_EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0"
NO_SUCH_JOB = f"{OGC_EXC}/no-such-job"
NO_SUCH_PROCESS = f"{OGC_EXC}/no-such-process"
RESULT_NOT_READY = f"{OGC_EXC}/result-not-ready"
NO_SUCH_COLLECTION = "http://www.opengis.net/def/exceptions/ogcapi-features-1/1.0/not-found"
NO_SUCH_FEATURE = NO_SUCH_COLLECTION
PROBLEM_TYPES = {
    400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed",
    409: "conflict", 413: "payload too large", 415: "unsupported media type", 422: "unprocessable content",
    429: "too many requests", 500: "internal error", 503: "service unavailable",
}


class ApiProblem(Exception):
    """An error answered with an exception document (the message is the document's ``detail``)."""

    def __init__(self, status: int, detail: str, *, type_: str = "about:blank", title: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.type, self.headers = status, detail, type_, headers
        self.title = title or PROBLEM_TYPES.get(status, "error")
        self.extra = extra or {}


def problem_doc(status: int, detail: str, instance: str, *, type_: str = "about:blank", title: str | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exception document as a dict."""
    return {"type": type_, "title": title or PROBLEM_TYPES.get(status, "error"), "status": status,
            "detail": detail, "instance": instance, **(extra or {})}


def problem_response(status: int, detail: str, instance: str, *, type_: str = "about:blank",
                     title: str | None = None, headers: dict[str, str] | None = None,
                     extra: dict[str, Any] | None = None) -> JSONResponse:
    """The exception document as an ``application/problem+json`` response."""
    return JSONResponse(problem_doc(status, detail, instance, type_=type_, title=title, extra=extra),
                        status_code=status, headers=headers, media_type="application/problem+json")
