"""Kafka settings and the topics every service agrees on.

Records are keyed by the case id (`subject`) as UTF-8 bytes and placed by the
client's default murmur2 partitioner (the same in aiokafka, kafka-python and the
Java client), so one case always lands in one partition, in order, whichever
service wrote it.

Topics are made in a deployment step, not by use: an admin runs `normwacht kafka
create-topics` (`ensure_topics`), the broker does not create a topic someone merely
names, and each service only checks at start that the topics it needs are there,
partitioned as it needs (`check_topics`), and refuses to start otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faust
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    for_code,
)
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = structlog.get_logger(__name__)

DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600 * 1000
"""A week: time to look into a rejected record, short enough not to keep what a source
should never have sent."""


class KafkaSettings(BaseSettings):
    """`NORMWACHT_KAFKA_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="NORMWACHT_KAFKA_")

    bootstrap: str = "127.0.0.1:9092"
    events_topic: str = "normwacht.events"
    outcomes_topic: str = "normwacht.outcomes"
    dead_letter_topic: str = "normwacht.events.dlq"
    partitions: int = 6
    replication_factor: int = 1
    dead_letter_retention_ms: int = Field(
        default=DEAD_LETTER_RETENTION_MS,
        gt=0,
        description="How long the dead-letter topic keeps rejected records: their bytes are "
        "whatever a source sent, possibly personal data, so only long enough to look into them.",
    )

    # Security: TLS and SASL (see docs/ARCHITECTURE.md, "Securing Kafka").
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _credentials_complete(self) -> KafkaSettings:
        # Refuse at start rather than fail on the first connection with a vaguer error.
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and sasl_password"
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (the broker's certificate checked against `ssl_cafile`, or the
        system's CAs, and its host name), or None without TLS."""
        if not self.uses_ssl:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
        )
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Security options for AIOKafkaProducer/AIOKafkaConsumer/AIOKafkaAdminClient."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked by the validator
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        if self.uses_ssl:
            options["ssl_context"] = self.ssl_context()
        return options

    def kafka_python_options(self) -> dict[str, Any]:
        """Security options for kafka-python's KafkaAdminClient/KafkaProducer/KafkaConsumer
        (the same names as aiokafka's)."""
        return self.aiokafka_options()

    def faust_credentials(self) -> faust.SASLCredentials | faust.SSLCredentials | None:
        """faust's `broker_credentials`, which it hands on to every client it makes."""
        context = self.ssl_context()
        if self.uses_sasl:
            assert self.sasl_password is not None
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                ssl_context=context,  # SASL_SSL with one, SASL_PLAINTEXT without
                mechanism=self.sasl_mechanism,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None

    def topic_specs(self) -> dict[str, int]:
        """Partitions per public topic; events and outcomes share a count (co-partitioned)."""
        return {
            self.events_topic: self.partitions,
            self.outcomes_topic: self.partitions,
            self.dead_letter_topic: 1,
        }


def ensure_topics(
    settings: KafkaSettings, compacted: Sequence[str] = (), timeout_s: float = 60.0
) -> None:
    """Create the public topics (and `compacted` ones, partitioned as the events) if
    missing, and keep the dead-letter topic's retention at `dead_letter_retention_ms`.

    A deployment step, run with the right to create topics (on a broker with ACLs, as
    the admin): `normwacht kafka create-topics`, which passes the processor's changelogs
    as `compacted`. A topic that exists is left as it is, whatever its partition count;
    the services' `check_topics` refuses one partitioned otherwise than they need.
    Waits for the broker up to `timeout_s`.
    """
    admin = _admin_client(settings, "normwacht-admin", timeout_s)
    try:
        # Lists only the topics this user may describe (on a broker with ACLs).
        existing = set(admin.list_topics())
        specs = settings.topic_specs()
        missing = [
            NewTopic(
                name,
                num_partitions=count,
                replication_factor=settings.replication_factor,
                topic_configs=topic_configs(settings, name),
            )
            for name, count in specs.items()
            if name not in existing
        ] + [
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=topic_configs(settings, name, compacted=True),
            )
            for name in compacted
            if name not in existing
        ]
        created = set()
        for topic in missing:
            # One by one: someone else may create one between our list and our create.
            # A refusal (a user without CREATE) is raised: the topics are not ready.
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
            else:
                created.add(topic.name)
                log.info("topic_created", topic=topic.name)
        # Made by someone else (before, or just now): its retention may differ.
        if settings.dead_letter_topic not in created:
            _keep_dead_letter_retention(admin, settings)
    finally:
        admin.close()


class TopicsNotReady(RuntimeError):
    """Topics a service needs are missing, or partitioned otherwise than it needs."""


TOPICS_SETTLE_S = 3.0
"""How long a missing topic is looked for again: one created a moment ago reaches the
metadata of the broker asked a little after the controller made it."""


def check_topics(
    settings: KafkaSettings, needed: Mapping[str, int | None], timeout_s: float = 60.0
) -> None:
    """Raise `TopicsNotReady`, naming every problem, unless each topic of `needed` exists
    with its partition count (None: any count).

    Services do not create topics: a missing one would leave a consumer waiting and a
    producer failing every write, and one partitioned otherwise breaks co-partitioning
    (the processor writes each outcome to its event's partition number, and its tables'
    changelogs must have the events' partitions). The describe needs only DESCRIBE on
    each topic, which every grant that reads or writes it implies; a topic the user may
    not describe is named as a problem too. Waits for the broker up to `timeout_s`.
    """
    admin = _admin_client(settings, "normwacht-topic-check", timeout_s)
    try:
        settle = time.monotonic() + TOPICS_SETTLE_S
        while True:
            problems = _topic_problems(admin.describe_topics(list(needed)), needed)
            if not problems or time.monotonic() > settle:
                break
            time.sleep(0.5)
    finally:
        admin.close()
    if problems:
        raise TopicsNotReady(_explain(settings, problems))


def require_topics(service: str, settings: KafkaSettings, needed: Mapping[str, int | None]) -> None:
    """`check_topics` at a command's start: refuse with a plain message and exit status 1."""
    try:
        check_topics(settings, needed)
    except TopicsNotReady as error:
        raise SystemExit(f"normwacht {service} refuses to start: {error}") from None


@dataclass(frozen=True)
class _TopicProblem:
    topic: str
    problem: str
    partitions_differ: bool = False


def _topic_problems(
    described: Sequence[Mapping[str, Any]], needed: Mapping[str, int | None]
) -> list[_TopicProblem]:
    """What is wrong with each topic of `needed` that is not as needed."""
    found = {topic["name"]: topic for topic in described}
    problems = []
    for name, partitions in needed.items():
        topic = found.get(name, {"error_code": UnknownTopicOrPartitionError.errno})
        code, count = topic["error_code"], len(topic.get("partitions") or ())
        if code == UnknownTopicOrPartitionError.errno:
            problems.append(_TopicProblem(name, "missing"))
        elif code == TopicAuthorizationFailedError.errno:
            # The broker says this of a missing topic too, to a user without DESCRIBE.
            problems.append(_TopicProblem(name, "not allowed to describe it (or missing)"))
        elif code:
            problems.append(_TopicProblem(name, f"not described: {for_code(code).__name__}"))
        elif partitions is not None and count != partitions:
            problems.append(_TopicProblem(name, f"{count} partitions, needs {partitions}", True))
    return problems


def _explain(settings: KafkaSettings, problems: Sequence[_TopicProblem]) -> str:
    lines = [f"topics on {settings.bootstrap} not as needed:"]
    lines += [f"  {p.topic}: {p.problem}" for p in problems]
    if not all(p.partitions_differ for p in problems):
        lines.append(
            "Create the topics before starting the services: `normwacht kafka create-topics` "
            "(as the broker's admin on a secured broker), with the same NORMWACHT_KAFKA_* "
            "topic settings and NORMWACHT_PROCESSOR_APP_ID."
        )
    if any(p.partitions_differ for p in problems):
        lines.append(
            "A topic that exists keeps its partition count (create-topics does not change "
            f"it): NORMWACHT_KAFKA_PARTITIONS (here {settings.partitions}) must equal the "
            "events topic's count, or the topic be made anew."
        )
    return "\n".join(lines)


def _admin_client(settings: KafkaSettings, client_id: str, timeout_s: float) -> KafkaAdminClient:
    """An admin client, once the broker answers (trying again for up to `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.bootstrap,
                client_id=client_id,
                **settings.kafka_python_options(),
            )
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def topic_configs(settings: KafkaSettings, name: str, *, compacted: bool = False) -> dict[str, str]:
    """The configuration a topic is made with."""
    configs = {"cleanup.policy": "compact"} if compacted else {}
    if name == settings.dead_letter_topic:
        configs["retention.ms"] = str(settings.dead_letter_retention_ms)
    if settings.replication_factor > 1:
        # Producers wait for the in-sync replicas (acks=all); with the broker's default of
        # one, a leader left alone in sync acknowledges by itself, and losing it loses
        # what was acknowledged (events ingest answered 202 for).
        configs["min.insync.replicas"] = str(min(2, settings.replication_factor))
    return configs


def _keep_dead_letter_retention(admin: KafkaAdminClient, settings: KafkaSettings) -> None:
    """Set the existing dead-letter topic's retention to the configured one if it differs
    (a topic made before this setting, or by faust, has the broker's default).

    kafka-python reports a refused describe as an empty answer and a refused alter as an
    error text, not as exceptions.
    """
    topic, wanted = settings.dead_letter_topic, str(settings.dead_letter_retention_ms)
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})],
        config_filter="all",
    )
    current = described.get("topic", {}).get(topic, {}).get("retention.ms", {}).get("value")
    if current == wanted:
        return
    result = "not allowed to describe it"
    if current is not None:
        altered = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": wanted})],
            raise_on_unknown=False,
            incremental=True,
        )
        result = altered.get("topic", {}).get(topic, "no answer")
        if result == "OK":
            log.info("dead_letter_retention_set", topic=topic, retention_ms=wanted, was=current)
            return
    log.warning(
        "dead_letter_retention_not_set", topic=topic, retention_ms=current, wanted=wanted,
        error=result,
    )  # fmt: skip


START_GRACE_S = 5.0


@contextlib.asynccontextmanager
async def started(consumer: AIOKafkaConsumer) -> AsyncIterator[AIOKafkaConsumer]:
    """`consumer`, started, and stopped on leaving, however that comes.

    aiokafka leaks its bootstrap connection when `start()` is cancelled midway
    (`AIOKafkaClient.bootstrap` closes it on Kafka errors only), so the start runs as its
    own task, which leaving (a shutdown) lets end for `START_GRACE_S` rather than cancel;
    only then is it cancelled after all, so a shutdown never hangs on a lost broker.
    """
    starting = asyncio.ensure_future(consumer.start())
    try:
        await asyncio.shield(starting)
        yield consumer
    finally:
        try:
            try:
                await asyncio.wait_for(starting, START_GRACE_S)
            except TimeoutError:
                log.warning("consumer_start_cancelled", after_s=START_GRACE_S)
            except Exception:  # noqa: S110 - a failed start was raised to the caller already
                pass
        finally:  # even if the shutdown is cancelled once more
            await consumer.stop()
