from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings


def test_development_accepts_the_development_token_by_default() -> None:
    assert IngestSettings().tokens == (DEVELOPMENT_TOKEN,)


def test_production_refuses_the_development_token() -> None:
    with pytest.raises(ValidationError, match="development token"):
        IngestSettings(environment="production")


def test_production_refuses_short_tokens() -> None:
    with pytest.raises(ValidationError, match="24 characters"):
        IngestSettings(environment="production", tokens="short")


def test_tokens_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMWACHT_INGEST_ENVIRONMENT", "production")
    monkeypatch.setenv("NORMWACHT_INGEST_TOKENS", "a" * 32 + ", " + "b" * 32)
    assert IngestSettings().tokens == ("a" * 32, "b" * 32)
