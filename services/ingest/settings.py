from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.shared.kafka import KafkaSettings

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

DEVELOPMENT_TOKEN = "normwacht-dev-token"  # noqa: S105 - public on purpose: the README names it


class IngestSettings(BaseSettings):
    """`NORMWACHT_INGEST_*` environment variables.

    `tokens` is a comma-separated list of bearer tokens integration partners may
    use. A production environment refuses to start with the development token,
    or with none at all.
    """

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_INGEST_")

    environment: Literal["development", "production"] = "development"
    tokens: Annotated[tuple[str, ...], NoDecode] = (DEVELOPMENT_TOKEN,)
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

    @model_validator(mode="before")
    @classmethod
    def _split_tokens(cls, values: dict[str, object]) -> dict[str, object]:
        tokens = values.get("tokens")
        if isinstance(tokens, str):
            values["tokens"] = tuple(t.strip() for t in tokens.split(",") if t.strip())
        return values

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

    @model_validator(mode="after")
    def _production_needs_real_tokens(self) -> IngestSettings:
        if self.environment == "production":
            if not self.tokens:
                raise ValueError("production needs NORMWACHT_INGEST_TOKENS")
            if DEVELOPMENT_TOKEN in self.tokens:
                raise ValueError(
                    "production refuses the development token; set NORMWACHT_INGEST_TOKENS"
                )
            if any(len(t) < 24 for t in self.tokens):
                raise ValueError("production tokens must be at least 24 characters")
        return self
