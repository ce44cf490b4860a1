"""`NORMWACHT_SOURCE_*` settings of the source adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from normwacht.core.events import Municipality
from normwacht.sources.common import MIN_KEY_BYTES, Pseudonyms

DEVELOPMENT_TOKEN = "normwacht-dev-token"  # noqa: S105 - public: only development ingest takes it


class SourceSettings(BaseSettings):
    """Where to post, with which partner key, and how vendor records map to municipalities.

    The mappings are JSON objects, e.g.
    `NORMWACHT_SOURCE_ASTERISK_QUEUES='{"kcc-heiloo": "heiloo"}'`.
    """

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_SOURCE_")

    ingest_url: str = "http://127.0.0.1:8000"
    token: SecretStr = SecretStr(DEVELOPMENT_TOKEN)
    hmac_key: SecretStr = Field(
        description=f"Key of the case and event pseudonyms (at least {MIN_KEY_BYTES} bytes); "
        "keep it: another key gives other case ids for the same vendor records."
    )
    batch_size: int = Field(default=500, ge=1, le=500)
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_backoff_s: float = Field(default=60.0, gt=0)
    state_dir: Path = Path(".run/sources")

    asterisk_source: str = "urn:buch:kcc:telephony"
    asterisk_queues: dict[str, Municipality] = Field(default_factory=dict)
    asterisk_queue_codes: dict[str, str] = Field(default_factory=dict)
    asterisk_poll_s: float = Field(default=0.5, gt=0)
    asterisk_rotation_grace_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a queue_log rotated away must have had no new line before the "
        "new file is followed (Asterisk writes to the old one until it reopens its logs).",
    )

    email_source: str = "urn:buch:kcc:email"
    email_mailboxes: dict[str, Municipality] = Field(default_factory=dict)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_post_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="How long to retry ingest before answering the sending server 451 "
        "(it then retries the mail later).",
    )

    open311_source: str = "urn:buch:meldingen"
    open311_endpoints: dict[str, Municipality] = Field(default_factory=dict)
    open311_urgent: Annotated[frozenset[str], NoDecode] = frozenset()
    open311_poll_s: float = Field(default=60.0, gt=0)
    open311_jurisdiction_id: str | None = None

    @field_validator("hmac_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_KEY_BYTES:
            raise ValueError(f"must be at least {MIN_KEY_BYTES} bytes")
        return value

    @field_validator("email_mailboxes", mode="after")
    @classmethod
    def _lower_case(cls, value: dict[str, Municipality]) -> dict[str, Municipality]:
        return {address.lower(): municipality for address, municipality in value.items()}

    @field_validator("open311_endpoints", mode="after")
    @classmethod
    def _no_trailing_slash(cls, value: dict[str, Municipality]) -> dict[str, Municipality]:
        return {url.rstrip("/"): municipality for url, municipality in value.items()}

    @field_validator("open311_urgent", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(c.strip() for c in value.split(",") if c.strip())
        return value

    def pseudonyms(self, source: str) -> Pseudonyms:
        return Pseudonyms(self.hmac_key.get_secret_value().encode(), source)
