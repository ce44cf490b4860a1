"""A ZGW notification names the status to read; we send our Zaken API credentials with
that read, so only URLs below the configured Zaken API are read."""

from __future__ import annotations

import pytest

from services.ingest.webhooks.zgw import _below

BASE = "https://zaken.buch.example/zaken/api/v1/"


@pytest.mark.parametrize(
    ("url", "below"),
    [
        (BASE + "statussen/7c1a", True),
        (BASE + "statussen/7c1a?expand=statustype", True),
        ("https://zaken.buch.example:443/zaken/api/v1/statussen/7c1a", True),
        ("https://elsewhere.example/zaken/api/v1/statussen/7c1a", False),
        ("http://zaken.buch.example/zaken/api/v1/statussen/7c1a", False),  # no TLS
        ("https://zaken.buch.example:8443/zaken/api/v1/statussen/7c1a", False),
        ("https://zaken.buch.example/other/api/v1/statussen/7c1a", False),
        (BASE + "../../../admin/secrets", False),  # resolved by the client: /admin/secrets
        (BASE + "%2e%2e/%2E%2E/admin", False),  # resolved by many servers
        (BASE + "statussen/./7c1a", False),
        ("https://zaken.buch.example@elsewhere.example/zaken/api/v1/statussen/1", False),
        ("https://zaken.buch.example.elsewhere.example/zaken/api/v1/statussen/1", False),
        ("not a url at all", False),
    ],
)
def test_only_resources_below_the_zaken_api_are_read(url: str, below: bool) -> None:
    assert _below(url, BASE) is below
