"""Who may do what on a broker with ACLs: each service's grants, and applying them.

The grants here are the ones docs/ARCHITECTURE.md ("Securing Kafka") lists; the
integration test gives every service exactly these and runs the pipeline, so a grant
missing here fails it, and a partner's refusals are tested there too. An admin (a super
user) applies them through the Admin API: `add_scram_user` and `grant`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from services.shared.kafka import KafkaSettings

Op = ACLOperation


@dataclass(frozen=True)
class Grant:
    """Operations allowed on one resource (a literal name, or every name with a prefix)."""

    resource: ResourceType
    name: str
    operations: tuple[ACLOperation, ...]
    prefixed: bool = False


def service_grants(
    kafka: KafkaSettings,
    *,
    processor_app_id: str = "normwacht-sla",
    api_group: str = "normwacht-api",
    notifier_group: str = "normwacht-notifier",
) -> dict[str, list[Grant]]:
    """The grants of each service's user, and of a partner writing to Kafka directly.

    WRITE and READ imply DESCRIBE (all `check_topics` needs at a service's start), and
    READ on a group lets its member commit; since Kafka 3.0 WRITE on a topic also lets an
    idempotent producer (ingest's) get its producer id (KIP-679), so no one needs
    IDEMPOTENT_WRITE on the cluster.
    """
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    return {
        "ingest": [Grant(topic, kafka.events_topic, (Op.WRITE,))],
        "processor": [
            # It reads the events and writes its own due-records into them.
            Grant(topic, kafka.events_topic, (Op.READ, Op.WRITE)),
            Grant(topic, kafka.outcomes_topic, (Op.WRITE,)),
            Grant(topic, kafka.dead_letter_topic, (Op.WRITE,)),
            Grant(group, processor_app_id, (Op.READ,)),
            # faust's own topics: the tables' changelogs (made by the admin beforehand,
            # declared again by faust) and its leader topic, all named `<app id>-...`,
            # which it creates, writes and reads back.
            Grant(
                topic,
                f"{processor_app_id}-",
                (Op.CREATE, Op.READ, Op.WRITE, Op.DESCRIBE),
                prefixed=True,
            ),
        ],
        "api": [
            Grant(topic, kafka.outcomes_topic, (Op.READ,)),
            Grant(group, api_group, (Op.READ,)),
        ],
        "notifier": [
            Grant(topic, kafka.outcomes_topic, (Op.READ,)),
            Grant(group, notifier_group, (Op.READ,)),
        ],
        "partner": [Grant(topic, kafka.events_topic, (Op.WRITE,))],
    }


def _admin(admin: KafkaSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=admin.bootstrap,
        client_id="normwacht-access",
        **admin.kafka_python_options(),
    )


def add_scram_user(
    admin: KafkaSettings, user: str, password: str, mechanism: str = "SCRAM-SHA-512"
) -> None:
    """Create (or give a new password to) a SCRAM user; `admin` must be a super user."""
    client = _admin(admin)
    try:
        upsert = UserScramCredentialUpsertion(
            user, ScramMechanism[mechanism.replace("-", "_")], password
        )
        errors = client.alter_user_scram_credentials([upsert])
    finally:
        client.close()
    if errors.get(user):
        raise RuntimeError(f"SCRAM user {user}: {errors[user]}")


def grant(admin: KafkaSettings, user: str, grants: Iterable[Grant]) -> None:
    """Allow `user` (a SCRAM user name) what `grants` say, from any host."""
    acls = [
        ACL(
            principal=f"User:{user}",
            host="*",
            operation=operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                g.resource,
                g.name,
                ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL,
            ),
        )
        for g in grants
        for operation in g.operations
    ]
    client = _admin(admin)
    try:
        result = client.create_acls(acls)
    finally:
        client.close()
    if result["failed"]:
        raise RuntimeError(f"ACLs for {user} refused: {result['failed']}")
