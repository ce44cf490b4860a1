"""A request body read with a limit, for every ingest route that takes one."""

from __future__ import annotations

from fastapi import Request

from services.shared.problems import Problem


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past `limit` bytes before it is all read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "body-too-large", "Body too large", f"the body may be at most {limit} bytes"
    )
