from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.kafka import KafkaSettings


class NotifierSettings(BaseSettings):
    """`NORMWACHT_NOTIFIER_*` environment variables.

    `resend_interval` is in seconds; `max_age` is a duration in ISO 8601 (`P7D`, `PT12H`).
    """

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_NOTIFIER_")

    host: str = "127.0.0.1"
    port: int = 8002
    alertmanager_url: str = "http://127.0.0.1:9093"
    database_url: str = "sqlite:///.run/notifier.db"
    resend_interval: float = Field(default=60.0, gt=0)
    max_age: timedelta = timedelta(days=7)
    api_url: str = "http://127.0.0.1:8001"
    group_id: str = "normwacht-notifier"
    max_poll_interval: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a batch may wait for Alertmanager before Kafka gives the "
        "partitions to another member; the notifier then joins again and reads the batch again.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"
