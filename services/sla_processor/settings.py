from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.kafka import KafkaSettings


class ProcessorSettings(BaseSettings):
    """`NORMWACHT_PROCESSOR_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_PROCESSOR_")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    app_id: str = "normwacht-sla"
    data_dir: Path = Path(".run/processor")
    store: str = "rocksdb://"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    tick_interval_s: float = 0.2
    session_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=90.0,  # faust refuses more than its request timeout (90 s)
        description="How long the group waits for a silent worker before moving its partitions.",
    )
    instance_id: str | None = Field(
        default=None,
        description="Kafka static membership (group.instance.id), unique per worker, e.g. a "
        "StatefulSet pod's name: a worker restarted under the same id gets its partitions "
        "back at once instead of after the session timeout. The price: a worker stopped for "
        "good keeps its partitions until the session timeout too (static members never "
        "leave the group).",
    )
    commit_interval_s: float = Field(
        default=2.8,
        gt=0,
        description="How often processed offsets are committed: after a crash, at most "
        "this much work is read again (faust's default).",
    )
    fetch_max_wait_s: float = Field(
        default=0.1,
        ge=0.01,  # less would have an idle worker fetch in a busy loop
        le=1.5,
        description="How long the broker may hold a fetch for want of new records. It "
        "bounds how long a record can wait unseen behind others (faust_compat.py).",
    )
    stop_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a stopping worker may take to commit and leave its group "
        "before it exits without (as after a kill -9: nothing is lost, its records are "
        "read again).",
    )
    allowed_lateness_s: float = Field(
        default=0.0,
        ge=0,
        description="How long past a deadline we wait for late events before breaching. "
        "A later event dated in time still corrects the breach.",
    )
    cached_cases: int = Field(
        default=10_000,
        ge=1,
        description="Cases kept decoded in memory, with the engine's derivation state, so "
        "that an event for a recently used case does not derive it again.",
    )
    rocksdb_write_buffer_mb: int = Field(
        default=4,
        ge=1,
        description="Size of each RocksDB memtable. The worker opens a database per table and "
        "partition (4 tables x 6 partitions), each with up to two memtables: with faust's "
        "default of 64 MB (three each) a worker could hold gigabytes of them.",
    )
    rocksdb_block_cache_mb: int = Field(
        default=8,
        ge=1,
        description="Size of each RocksDB database's block cache (faust's default: 2 GiB "
        "each). The processor reads a case from RocksDB only when it is not among the "
        "cached cases.",
    )
    due_record_key: SecretStr | None = Field(
        default=None,
        description="Signs the due-records the processor writes into the events topic, so "
        "that it acts on its own only; required. One secret for every worker of a "
        "deployment (and for a replay of its topic).",
    )
    log_level: str = "INFO"

    @property
    def rocksdb_options(self) -> dict[str, int]:
        """Options for each RocksDB database of the processor's tables (faust's
        `RocksDBOptions`), a new dict per table: faust's store takes keys out of it."""
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mb * 2**20,
            "max_write_buffer_number": 2,  # one being written, one being flushed
            "block_cache_size": self.rocksdb_block_cache_mb * 2**20,
        }

    @property
    def group_instance_id(self) -> str | None:
        """`instance_id` with the worker's web address, or None (dynamic membership).

        faust records each member's web address in its assignment, and a static
        member is handed back that assignment; one restarted at another address fails
        faust's check (measured: an AssertionError in the assignor, and no partitions).
        With the address in the id, such a worker simply joins as a new member.
        """
        if not self.instance_id:
            return None
        return f"{self.instance_id}@{self.web_host}:{self.web_port}"
