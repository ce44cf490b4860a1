from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from normwacht.catalogue_file import load as load_catalogue
from services.api.settings import ApiSettings
from services.ingest.settings import IngestSettings
from services.shared.kafka import KafkaSettings, topic_configs
from services.sla_processor.app import NoDueRecordKey, create_app
from services.sla_processor.settings import ProcessorSettings


def test_ingest_and_api_are_in_production_mode_by_default() -> None:
    """Fail closed: the development token works only where someone asked for development."""
    assert IngestSettings().environment == "production"
    assert ApiSettings().environment == "production"


def test_ingest_reads_partners_from_the_apis_database(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestSettings().database_url == ApiSettings().database_url
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/normwacht")
    monkeypatch.setenv("NORMWACHT_INGEST_PARTNERS_REFRESH_S", "0")
    settings = IngestSettings()
    assert settings.database_url == "postgresql+psycopg://u@h/normwacht"
    assert settings.partners_refresh_s == 0


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


def test_a_processor_without_a_due_record_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It would otherwise act on due-records anyone who may write the events topic forged."""
    monkeypatch.delenv("NORMWACHT_PROCESSOR_DUE_RECORD_KEY")
    with pytest.raises(NoDueRecordKey, match="NORMWACHT_PROCESSOR_DUE_RECORD_KEY is not set"):
        create_app(ProcessorSettings(data_dir=tmp_path), load_catalogue())
    monkeypatch.setenv("NORMWACHT_PROCESSOR_DUE_RECORD_KEY", "x" * 31)  # one byte short
    with pytest.raises(NoDueRecordKey, match="is 31 bytes long"):
        create_app(ProcessorSettings(data_dir=tmp_path), load_catalogue())


def test_the_processors_rocksdb_databases_have_bounded_memory(tmp_path: Path) -> None:
    """A database per table and partition, each with faust's 64 MB memtables (three) and
    2 GiB block cache, would let a worker's memory grow to gigabytes."""
    catalogue = load_catalogue()
    for settings, write_buffer, block_cache in (
        (ProcessorSettings(data_dir=tmp_path), 4 * 2**20, 8 * 2**20),
        (
            ProcessorSettings(
                data_dir=tmp_path, rocksdb_write_buffer_mb=16, rocksdb_block_cache_mb=32
            ),
            16 * 2**20,
            32 * 2**20,
        ),
    ):
        app = create_app(settings, catalogue)
        stores = [table.data for table in app.tables.values()]
        assert len(stores) == 4
        for store in stores:
            options = store.rocksdb_options
            assert options.write_buffer_size == write_buffer
            assert options.max_write_buffer_number == 2
            assert options.block_cache_size == block_cache


def test_replicated_topics_need_two_replicas_in_sync_to_acknowledge() -> None:
    """With acks=all and the broker's default of one, a leader alone acknowledges."""
    single, replicated = KafkaSettings(), KafkaSettings(replication_factor=3)
    assert topic_configs(single, single.events_topic) == {}
    assert topic_configs(replicated, replicated.events_topic) == {"min.insync.replicas": "2"}
    assert topic_configs(replicated, "x-changelog", compacted=True) == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
    }
    dead_letters = topic_configs(replicated, replicated.dead_letter_topic)
    assert dead_letters["min.insync.replicas"] == "2"
    assert dead_letters["retention.ms"] == str(replicated.dead_letter_retention_ms)
