"""The API's read model: every outcome once, and each clock's current state.

Writes are idempotent: an outcome whose id is already stored changes nothing, so
replaying the outcomes topic never duplicates a row or moves a clock back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    Engine,
    Index,
    String,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from normwacht.core.engine import Kind, Outcome
from normwacht.core.report import DECIDED, OPEN, RUNNING, ClockCount
from services.shared.db import Schema, UTCDateTime
from services.shared.db import connect as shared_connect


class Base(DeclarativeBase):
    pass


class OutcomeRow(Base):
    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_subject", "subject"),
        Index("ix_outcomes_breaches", "kind", "decided_at", "id"),
        # `GET /v1/breaches?norm=` (migration api_0003).
        Index("ix_outcomes_breaches_by_norm", "kind", "norm", "decided_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128))
    norm: Mapped[str] = mapped_column(String(64))
    instance: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    corrects: Mapped[str | None] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(default=1)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClockRow(Base):
    __tablename__ = "clocks"
    __table_args__ = (
        # The year report counts the clocks decided in a year: from this index alone,
        # which holds all it groups by (migration api_0002; by `decided_at` only, the
        # report took longer than a scan: docs/BENCHMARKS.md, "The year report").
        Index("ix_clocks_decided", "decided_at", "municipality", "norm", "channel", "status"),
    )

    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    norm: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    standing: Mapped[str] = mapped_column(String(300))
    """The id of the outcome that stands for the clock: its last one other than at_risk."""
    channel: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


SCHEMA = Schema("api", Base.metadata, "api_0001", frozenset({"outcomes", "clocks"}))


def connect(url: str) -> Engine:
    """An engine with this service's tables in place."""
    return shared_connect(url, SCHEMA)


_CHUNK = 500
"""Rows per statement: well below SQLite's and PostgreSQL's limits on bound parameters."""


def record_outcomes(session: Session, outcomes: Iterable[Outcome], now: datetime) -> int:
    """Store outcomes not seen before and move their clocks; returns how many were new.

    Set-based: one multi-row insert that skips stored ids and says which were new, one
    read of the batch's cases' clocks, then each clock moved in memory. An outcome at a
    time took three statements each: a batch of 1,000 held the write lock for about a
    second, and other writers of a shared SQLite database (ingest's audit) timed out.
    """
    batch = list(outcomes)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [o.model_dump(exclude={"id"}) | {"id": o.id, "recorded_at": now} for o in batch]
    stored: set[str] = set()
    for first in range(0, len(rows), _CHUNK):
        statement = (
            insert(OutcomeRow)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(OutcomeRow.id)
        )
        stored.update(session.scalars(statement, rows[first : first + _CHUNK]))
    new: list[Outcome] = []
    for outcome in batch:
        if outcome.id in stored:  # else a replay: already applied
            stored.discard(outcome.id)  # an id twice in one batch is new once
            new.append(outcome)
    subjects = list({outcome.subject for outcome in new})
    clocks: dict[tuple[str, str, int], ClockRow] = {}
    for first in range(0, len(subjects), _CHUNK):
        # By subject, the primary key's first column (a row-value IN made SQLite scan).
        chosen = ClockRow.subject.in_(subjects[first : first + _CHUNK])
        for row in session.scalars(select(ClockRow).where(chosen)):
            clocks[(row.subject, row.norm, row.instance)] = row
    for outcome in new:
        key = (outcome.subject, outcome.norm, outcome.instance)
        if (clock := clocks.get(key)) is None:
            clock = clocks[key] = ClockRow(
                subject=outcome.subject,
                norm=outcome.norm,
                instance=outcome.instance,
                channel=outcome.channel,
                municipality=outcome.municipality,
                started_at=outcome.started_at,
            )
            session.add(clock)
        _move(clock, outcome)
    return len(new)


def _move(clock: ClockRow, outcome: Outcome) -> None:
    """The clock's state after one more of its outcomes."""
    if outcome.kind is Kind.STOPPED_LATE:
        if clock.standing is None:
            # The first outcome read of this clock (its breach was published before
            # the oldest record the topic keeps): the clock stands breached, by the
            # breach of the same revision, whose row this database never got.
            breach = outcome.model_copy(update={"kind": Kind.BREACHED})
            clock.status = Kind.BREACHED.value
            clock.standing = breach.id
            clock.deadline = outcome.deadline
            clock.decided_at = outcome.deadline or outcome.decided_at
        return  # the breach stands: the clock's state and standing outcome stay
    clock.status = outcome.kind.value
    if outcome.kind is not Kind.AT_RISK or clock.standing is None:
        clock.standing = outcome.id
    clock.deadline = outcome.deadline
    clock.decided_at = outcome.decided_at


def case_clocks(session: Session, subject: str) -> list[ClockRow]:
    return list(
        session.scalars(
            select(ClockRow)
            .where(ClockRow.subject == subject)
            .order_by(ClockRow.norm, ClockRow.instance)
        )
    )


def year_clocks(
    session: Session, since: datetime, until: datetime, municipalities: Sequence[str]
) -> list[ClockCount]:
    """The year report's counts, as the clocks stand now: those decided in [since,
    until) by state, and as `open` those running at `until` (started before it and
    decided at or after it, or not yet): the backlog the year leaves, or leaves so far."""
    columns = (ClockRow.municipality, ClockRow.norm, ClockRow.channel)
    final = [kind.value for kind in DECIDED]
    decided = (
        select(*columns, ClockRow.status, func.count())
        .where(
            ClockRow.status.in_(final),
            ClockRow.decided_at >= since,
            ClockRow.decided_at < until,
            ClockRow.municipality.in_(municipalities),
        )
        .group_by(*columns, ClockRow.status)
    )
    running = (
        select(*columns, func.count())
        .where(
            ClockRow.started_at < until,
            or_(
                ClockRow.status.in_([kind.value for kind in RUNNING]),
                and_(ClockRow.status.in_(final), ClockRow.decided_at >= until),
            ),
            ClockRow.municipality.in_(municipalities),
        )
        .group_by(*columns)
    )
    return [ClockCount(*row) for row in session.execute(decided)] + [
        ClockCount(municipality, norm, channel, OPEN, clocks)
        for municipality, norm, channel, clocks in session.execute(running)
    ]
