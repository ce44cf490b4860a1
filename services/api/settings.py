from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.kafka import KafkaSettings


class ApiSettings(BaseSettings):
    """`NORMWACHT_API_*` environment variables; the database also from `DATABASE_URL`."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_API_")

    host: str = "127.0.0.1"
    port: int = 8001
    database_url: str = Field(
        default="sqlite:///.run/normwacht.db",
        validation_alias=AliasChoices("DATABASE_URL", "NORMWACHT_API_DATABASE_URL"),
    )
    consumer_group: str = "normwacht-api"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"
