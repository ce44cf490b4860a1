from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.shared.kafka import KafkaSettings
from services.shared.partners import DEVELOPMENT_TOKEN

__all__ = ["DEVELOPMENT_TOKEN", "SILENT_AFTER", "IngestSettings"]

# Office time without events after which a source of a channel counts as silent: short for
# channels that are busy all day, a working day for those that see a few items a day.
SILENT_AFTER = {
    "phone": 900.0,
    "counter": 3600.0,
    "website": 900.0,
    "email": 3600.0,
    "social": 14400.0,
    "public_space": 14400.0,
    "appointment": 14400.0,
    "letter": 30600.0,
    "complaint": 30600.0,
    "objection": 30600.0,
}


class IngestSettings(BaseSettings):
    """`NORMWACHT_INGEST_*` environment variables; the partner registry's database also
    from `DATABASE_URL`.

    Production (the default: fail closed) accepts only registered partners' keys and
    refuses to start without an active write partner; development also accepts the
    development token as a partner with every scope.
    """

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_INGEST_")

    environment: Literal["development", "production"] = "production"
    database_url: str = Field(
        default="sqlite:///.run/normwacht.db",
        validation_alias=AliasChoices("DATABASE_URL", "NORMWACHT_INGEST_DATABASE_URL"),
        description="The partner registry (the API's database).",
    )
    partners_refresh_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between reads of the partner registry (0: every request); "
        "a revocation takes effect within it.",
    )
    audit_every_s: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between writes of the audit rows (one transaction each).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_events: int = 500
    max_body_bytes: int = 1_048_576
    silent_after: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: dict(SILENT_AFTER),
        description='Seconds of office time per channel; JSON, e.g. {"phone": 600}, '
        "merged over the defaults.",
    )
    forget_sources_after: float = Field(
        default=7 * 86400,
        gt=0,
        description="Seconds after which a silent source is forgotten (no longer reported).",
    )
    max_sources: int = Field(
        default=1_000,
        gt=0,
        description="The most pairs of source and channel tracked for silence (see "
        "services/ingest/activity.py); events of more are counted, not tracked.",
    )
    data_dir: Path = Field(
        default=Path(".run/ingest"),
        description="Where ingest keeps what it last heard of each source, across restarts.",
    )
    always_on: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"website"}),
        description="Channels whose silence counts in real time, not office time "
        "(comma-separated): sources that send around the clock.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"

    @field_validator("always_on", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        return (
            frozenset(c.strip() for c in value.split(",") if c.strip())
            if isinstance(value, str)
            else value
        )

    @field_validator("silent_after", mode="after")
    @classmethod
    def _over_the_defaults(cls, value: dict[str, float]) -> dict[str, float]:
        return {**SILENT_AFTER, **value}
