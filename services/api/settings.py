from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.kafka import KafkaSettings


class ApiSettings(BaseSettings):
    """`NORMWACHT_API_*` environment variables; the database also from `DATABASE_URL`.

    Reading needs a read partner's key (`normwacht partners add NAME --role read`); in
    development (never the default) the development token reads everything as well.
    """

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_API_")

    host: str = "127.0.0.1"
    port: int = 8001
    database_url: str = Field(
        default="sqlite:///.run/normwacht.db",
        validation_alias=AliasChoices("DATABASE_URL", "NORMWACHT_API_DATABASE_URL"),
    )
    consumer_group: str = "normwacht-api"
    environment: Literal["development", "production"] = "production"
    partners_refresh_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between reads of the partner registry (0: every request).",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"
