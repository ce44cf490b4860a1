"""RFC 9457 problem details for both HTTP services."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:normwacht:problem:"


class ProblemDetails(BaseModel):
    """An error answer of ingest and the API (RFC 9457), as `application/problem+json`."""

    model_config = ConfigDict(extra="allow")  # extension members, e.g. `attribute`

    type: str = Field(examples=[_TYPE_BASE + "invalid-event"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = Field(default=None, description="The request's path.")
    # Plain objects, not a nested model: the schema is inlined into each route's OpenAPI.
    errors: list[dict[str, str]] | None = Field(
        default=None,
        description="422: every invalid field, as `pointer` (RFC 6901) and `detail`.",
    )


def problem_responses(
    described: Mapping[int, Mapping[str, Any]],
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status (with its description) answered as problem details."""
    content = {PROBLEM_JSON: {"schema": ProblemDetails.model_json_schema()}}
    return {status: {**response, "content": content} for status, response in described.items()}


class Problem(Exception):
    """Raise to answer with a problem-details document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extensions = extensions

    def response(self, instance: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return JSONResponse(
            body, status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def json_pointer(loc: Sequence[int | str], skip: frozenset[str] = frozenset()) -> str:
    """`loc` of a pydantic error as an RFC 6901 pointer; `skip` drops union tags from it."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc if p not in skip]
    return "/" + "/".join(parts) if parts else ""


def _pointer(error: ErrorDetails, skip: frozenset[str]) -> str:
    loc = error["loc"]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")  # pydantic places an unknown event type at the event itself
    return json_pointer(loc, skip)


def invalid(
    errors: Sequence[ErrorDetails], skip: frozenset[str] = frozenset(), **extra: Any
) -> Problem:
    """422 naming every invalid field by JSON pointer."""
    listed = [{"pointer": _pointer(e, skip), "detail": e["msg"]} for e in errors[:50]]
    first = listed[0]
    return Problem(
        422,
        "invalid-event",
        "Invalid event",
        f"{first['pointer'] or 'the body'}: {first['detail']}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
        errors=listed,
        **extra,
    )


def known_query_only(request: Request) -> None:
    """422 for a query parameter the route does not declare, or one given twice: a typo
    (`?municipalty=`) would otherwise be ignored and the answer look right. Use as an
    app-wide dependency.

    App-wide dependencies run before a route's own, so a route behind a key (a security
    scheme among its dependencies) is skipped here: its key's dependency calls
    `check_query` once it has authenticated, so that missing credentials answer 401
    whatever the query holds."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or _behind_a_key(dependant):
        return
    check_query(request)


def _behind_a_key(dependant: Dependant) -> bool:
    return any(
        isinstance(sub.call, SecurityBase) or _behind_a_key(sub) for sub in dependant.dependencies
    )


def check_query(request: Request) -> None:
    """`known_query_only`'s check, for a dependency that authenticates first."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    declared = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        declared.update(param.alias for param in sub.query_params)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise Problem(
            422,
            "unknown-query-parameter",
            "Unknown query parameter",
            f"this operation takes no query parameter {unknown[0]!r}"
            + (f" (declared: {', '.join(sorted(declared))})" if declared else ""),
        )
    # No operation takes a list: a parameter given twice (`limit=1&limit=2`) is a mistake,
    # and which value would count is not for us to guess.
    counted = Counter(name for name, _ in request.query_params.multi_items())
    if twice := sorted(name for name, count in counted.items() if count > 1):
        raise Problem(
            422,
            "repeated-query-parameter",
            "Repeated query parameter",
            f"query parameter {twice[0]!r} is given more than once; give it once",
        )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, ours and the framework's, as problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"pointer": json_pointer(e["loc"]), "detail": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"pointer": "", "detail": "invalid request"}
        return Problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{first['pointer']}: {first['detail']}",
            errors=errors,
        ).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception and its traceback after this answer is sent.
        return Problem(
            500,
            "internal-error",
            "Internal error",
            "the service failed to answer this request; it is logged, and the request "
            "may be sent again",
        ).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return Problem(
            exc.status_code, slug, str(exc.detail), str(exc.detail), headers=exc.headers
        ).response(request.url.path)


__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "ProblemDetails",
    "ValidationError",
    "check_query",
    "install_problem_handlers",
    "invalid",
    "known_query_only",
    "problem_responses",
]
