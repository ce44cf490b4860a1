"""The notifier's state: its alerts and the outcomes it has applied (SQLAlchemy 2).

`alerts` holds one row per (subject, norm, clock, alertname): firing rows are sent to
Alertmanager again and again; a resolved row is kept, `announced` once Alertmanager
accepted its resolution, so a resolution stored but not yet posted (a crash, an
unreachable Alertmanager) is posted after a restart. `applied` holds the ids of the
outcomes applied (see `services.notifier.rules`). `forget` drops the ids, and the
resolved and announced alerts, whose clock is older than `max_age`; a firing alert is
kept however old its clock, until an outcome resolves it (were it dropped, nothing would
send it again and Alertmanager would announce it resolved while the breach stands).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    JSON,
    Engine,
    String,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.notifier.rules import Alert, AlertKey, Plan
from services.shared.db import Schema, UTCDateTime
from services.shared.db import connect as shared_connect


class Base(DeclarativeBase):
    pass


class AlertRow(Base):
    __tablename__ = "notifier_alerts"

    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    norm: Mapped[str] = mapped_column(String(64), primary_key=True)
    clock: Mapped[int] = mapped_column(primary_key=True)
    alertname: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    clock_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    generator_url: Mapped[str] = mapped_column(String(512))
    announced: Mapped[bool] = mapped_column(default=False)
    """For a resolved row: Alertmanager has accepted the resolution."""

    def alert(self) -> Alert:
        return Alert(
            subject=self.subject,
            norm=self.norm,
            clock=self.clock,
            alertname=self.alertname,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            starts_at=self.starts_at,
            deadline=self.deadline,
            generator_url=self.generator_url,
            ends_at=self.ends_at,
        )


class AppliedRow(Base):
    __tablename__ = "notifier_applied"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    clock_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


SCHEMA = Schema(
    "notifier", Base.metadata, "notifier_0001", frozenset({"notifier_alerts", "notifier_applied"})
)


def connect(url: str) -> Engine:
    """An engine with this service's tables in place."""
    return shared_connect(url, SCHEMA)


def load(
    session: Session, keys: Iterable[AlertKey], ids: Iterable[str]
) -> tuple[dict[AlertKey, Alert], set[str]]:
    """The stored alerts among `keys`, and which of `ids` were applied already."""
    wanted, ids = set(keys), list(set(ids))
    subjects = list({key[0] for key in wanted})
    alerts: dict[AlertKey, Alert] = {}
    seen: set[str] = set()
    # By subject, the primary key's first column, then the keys picked here: SQLite reads a
    # row-value IN by scanning the table (311 ms a batch at 200,000 alerts, in a review).
    # In chunks: SQLite allows a limited number of bound parameters per statement.
    for first in range(0, len(subjects), 500):
        chunk = subjects[first : first + 500]
        for row in session.scalars(select(AlertRow).where(AlertRow.subject.in_(chunk))):
            alert = row.alert()
            if alert.key in wanted:
                alerts[alert.key] = alert
    for first in range(0, len(ids), 500):
        seen.update(
            session.scalars(
                select(AppliedRow.id).where(AppliedRow.id.in_(ids[first : first + 500]))
            )
        )
    return alerts, seen


def save(session: Session, result: Plan) -> None:
    """Store what a batch did: its alerts' new states (not yet announced) and its ids."""
    for alert in result.alerts:
        session.merge(
            AlertRow(
                subject=alert.subject,
                norm=alert.norm,
                clock=alert.clock,
                alertname=alert.alertname,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                starts_at=alert.starts_at,
                ends_at=alert.ends_at,
                deadline=alert.deadline,
                clock_at=alert.clock_at,
                generator_url=alert.generator_url,
                announced=False,
            )
        )
    for outcome_id, clock_at in result.applied:
        session.merge(AppliedRow(id=outcome_id, clock_at=clock_at))


def to_send(session: Session) -> list[Alert]:
    """The firing alerts and the resolutions not yet announced."""
    rows = session.scalars(
        select(AlertRow).where(or_(AlertRow.ends_at.is_(None), AlertRow.announced.is_(False)))
    )
    return [row.alert() for row in rows]


def announce(session: Session, resolved: Sequence[Alert]) -> None:
    """Mark resolutions as accepted by Alertmanager (unless the alert fired again since)."""
    for alert in resolved:
        if alert.ends_at is None:
            continue
        session.execute(
            update(AlertRow)
            .where(
                AlertRow.subject == alert.subject,
                AlertRow.norm == alert.norm,
                AlertRow.clock == alert.clock,
                AlertRow.alertname == alert.alertname,
                AlertRow.ends_at == alert.ends_at,
            )
            .values(announced=True)
        )


def forget(session: Session, before: datetime) -> int:
    """Drop the applied ids, and the alerts resolved and announced, whose clock is older
    than `before`; how many alerts. Firing alerts and resolutions not yet accepted stay."""
    dropped = session.execute(
        delete(AlertRow).where(
            AlertRow.clock_at < before,
            AlertRow.ends_at.is_not(None),
            AlertRow.announced.is_(True),
        )
    )
    session.execute(delete(AppliedRow).where(AppliedRow.clock_at < before))
    return int(dropped.rowcount)  # type: ignore[attr-defined]


def firing_count(session: Session) -> int:
    return (
        session.scalar(select(func.count()).select_from(AlertRow).where(AlertRow.ends_at.is_(None)))
        or 0
    )
