"""HEAD as GET without its content, seen at the ASGI level (a test client drops a HEAD
response's content itself, so it cannot tell whether the middleware did)."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from services.shared.head import HeadAsGet

BODY = b'{"status":"ok"}'


async def route(scope: Scope, receive: Receive, send: Send) -> None:
    """A GET route: a 405 for any other method, as FastAPI answers HEAD without help."""
    if scope["method"] != "GET":
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    length = str(len(BODY)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def sent(method: str) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {"type": "http", "method": method, "path": "/healthz", "headers": []}
    asyncio.run(HeadAsGet(route)(scope, receive, send))
    return messages


def test_head_gets_the_get_answer_and_headers_without_the_content() -> None:
    get_start, get_body = sent("GET")
    head_start, head_body = sent("HEAD")
    assert head_start == get_start  # 200, Content-Type and Content-Length as for GET
    assert get_body["body"] == BODY
    assert head_body["body"] == b""


def test_other_methods_pass_through_untouched() -> None:
    start, _ = sent("POST")
    assert start["status"] == 405
