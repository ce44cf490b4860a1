"""The vendor side of the adapters for tests: fixtures, Meta's signature, a Zaken API, an
Open311 server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from normwacht.sources.open311 import parse_time

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
KEY = "a-key-of-at-least-thirty-two-bytes-for-tests"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
ABONNEMENT_AUTH = "Bearer zgw-abonnement-key"
ZAKEN_API_AUTH = "Bearer zaken-api-jwt"
FIXTURE_ZAKEN_API = "https://zaken.example.nl/zaken/api/v1"
ZAAKTYPE = (
    "https://catalogi.example.nl/catalogi/api/v1/zaaktypen/0b8f4b6e-2a51-4a70-9d9a-5c0a3f2e7d01"
)
CONTACTED = (
    "https://catalogi.example.nl/catalogi/api/v1/statustypen/5f2a9c7e-1b3d-4e6f-8a0b-c2d4e6f8a0b1"
)
# Personal values of the fixtures (and vendor ids) that must never reach the topic.
PERSONAL = [b"31612345678", b"Jan Jansen", b"Dorpsstraat", b"6543217890123456", b"001234511"]
PERSONAL += [b"111222333", b"3e0c2a6b", b"wamid."]


# --- a Zaken API --------------------------------------------------------------------------------


@dataclass
class ZakenApi:
    base: str
    resources: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def serve(self, url: str, body: bytes) -> None:
        self.resources[url.removeprefix(self.base.split("/zaken/")[0])] = body


@contextmanager
def zaken_api(authorization: str) -> Iterator[ZakenApi]:
    """A Zaken API that answers GETs of the resources it was given, with the right token."""
    api: ZakenApi | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert api is not None
            given = self.headers.get("Authorization")
            api.seen.append((self.path, given))
            body = api.resources.get(self.path)
            status = 403 if given != authorization else 404 if body is None else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if body is not None and status == 200 else b'{"detail": "no"}')

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = ZakenApi(base=f"http://127.0.0.1:{server.server_address[1]}/zaken/api/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def meta_body(name: str) -> bytes:
    return (FIXTURES / "meta" / f"{name}.json").read_bytes()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Headers of a delivery Meta signed with the app secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def zgw_body(name: str, zaken: ZakenApi) -> bytes:
    """A ZGW fixture whose URLs point at this Zaken API."""
    return (
        (FIXTURES / "zgw" / f"{name}.json")
        .read_bytes()
        .replace(FIXTURE_ZAKEN_API.encode(), zaken.base.encode())
    )


class Open311Server:
    """The vendor side: `GET /v2/requests.json` over the requests it holds now."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.queries: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/v2/requests.json":
                    self.send_error(404)
                    return
                query = parse_qs(url.query)
                server.queries.append(query)
                after = parse_time(query.get("updated_after", [""])[0])
                body = json.dumps(
                    [
                        r
                        for r in server.requests
                        if after is None or (parse_time(r["updated_datetime"]) or after) >= after
                    ]
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v2"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
