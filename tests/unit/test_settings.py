from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from normwacht.catalogue_file import load as load_catalogue
from services.ingest.settings import DEVELOPMENT_TOKEN, IngestSettings
from services.sla_processor.app import create_app
from services.sla_processor.settings import ProcessorSettings


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


def test_a_processor_instance_id_makes_the_worker_a_static_group_member(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    dynamic = create_app(ProcessorSettings(data_dir=tmp_path), catalogue)
    settings = ProcessorSettings(data_dir=tmp_path, instance_id="worker-1", web_port=6070)
    static = create_app(settings, catalogue)
    assert dynamic.conf.consumer_group_instance_id is None
    # With the web address, which faust keeps in the assignment a static member gets back.
    assert static.conf.consumer_group_instance_id == "worker-1@127.0.0.1:6070"


def test_a_session_timeout_faust_would_refuse_is_refused_at_configuration() -> None:
    assert ProcessorSettings(session_timeout_s=90).session_timeout_s == 90
    with pytest.raises(ValidationError, match="less than or equal to 90"):
        ProcessorSettings(session_timeout_s=120)
