"""Which alerts an outcome opens or resolves: pure functions, no clock, no I/O.

One alert per clock (subject, norm, instance) and alertname:

| outcome kind | change |
|---|---|
| `at_risk` | open `NormAtRisk` |
| `breached` | open `NormBreached`, resolve `NormAtRisk` |
| `met`, `excluded`, `cancelled`, `stopped_late` | resolve both |
| `opened` with `corrects` (the clock runs again) | resolve `NormBreached` |
| `opened` without `corrects` | nothing |

Norms whose `notify` is `count` in the outcome's municipality open no alerts, nor do
norms no longer in the catalogue; their outcomes still resolve an alert their clock has
(opened while the norm notified), as only opening depends on the norm.
A record of a kind this version does not know does not decode (`services.shared.outcomes`).

Duplicates and ordering (`plan`): an outcome's id is stable and never repeats for
different content (`Outcome.id`), so an outcome applied once is remembered by its id
and dropped when it comes again, whether Kafka redelivered it, the topic was read
again from the start, or the processor published it twice. The outcomes of one case
are in order on one partition, so applying each id once, in order, leaves every alert
in the state the last outcome asks for: a redelivered `breached` after its `met` cannot
reopen the alert, while a *new* breach of the clock (`breached` revision 2, after a
correction) has a new id and does. Ids are kept `max_age` after their clock's deadline
or after they were applied, whichever is later: as long as their clock's alerts could be
opened, and as long as the topic (kept no longer than `max_age`) may hold them again.
An alert, by contrast, is kept while it fires, however old its clock: only an outcome
resolves it (`services.notifier.store.forget`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from normwacht.core.calendars import AMSTERDAM
from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Kind, Outcome

__all__ = [
    "AT_RISK",
    "BREACHED",
    "Alert",
    "AlertKey",
    "Change",
    "Open",
    "Plan",
    "Resolve",
    "alerts_for",
    "expired",
    "keys_of",
    "opens",
    "payload",
    "plan",
    "step",
]

AT_RISK = "NormAtRisk"
BREACHED = "NormBreached"

AlertKey = tuple[str, str, int, str]
"""(subject, norm, clock instance, alertname): what Alertmanager's label set identifies."""

_RESOLVES_BOTH = frozenset({Kind.MET, Kind.EXCLUDED, Kind.CANCELLED, Kind.STOPPED_LATE})


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the notifier keeps it; `ends_at` is None while it fires."""

    subject: str
    norm: str
    clock: int
    alertname: str
    labels: Mapping[str, str] = field(hash=False)
    annotations: Mapping[str, str] = field(hash=False)
    starts_at: datetime
    deadline: datetime | None
    generator_url: str
    ends_at: datetime | None = None

    @property
    def key(self) -> AlertKey:
        return (self.subject, self.norm, self.clock, self.alertname)

    @property
    def firing(self) -> bool:
        return self.ends_at is None

    @property
    def clock_at(self) -> datetime:
        """The instant its age is counted from: the deadline, else when it started."""
        return self.deadline or self.starts_at


@dataclass(frozen=True, slots=True)
class Open:
    alert: Alert

    @property
    def key(self) -> AlertKey:
        return self.alert.key


@dataclass(frozen=True, slots=True)
class Resolve:
    key: AlertKey


Change = Open | Resolve


def opens(outcome: Outcome, catalogue: Catalogue) -> bool:
    """Whether the outcome's norm may open alerts here: it is in the catalogue and its
    `notify` in the outcome's municipality is not `count`."""
    return (
        outcome.norm in catalogue.norms
        and catalogue.notify(outcome.norm, outcome.municipality) != "count"
    )


def alerts_for(outcome: Outcome, catalogue: Catalogue, *, api_url: str) -> list[Change]:
    """What one outcome asks of its clock's alerts (see the module's table).

    Only opening depends on the norm (`opens`); a resolve needs nothing but the stored
    alert, so it is asked for even when the norm's `notify` became `count` or the norm
    left the catalogue after the alert was opened.
    """
    kind = outcome.kind

    def key(alertname: str) -> AlertKey:
        return (outcome.subject, outcome.norm, outcome.instance, alertname)

    if kind in _RESOLVES_BOTH:
        return [Resolve(key(BREACHED)), Resolve(key(AT_RISK))]
    if kind is Kind.OPENED and outcome.corrects is not None:
        return [Resolve(key(BREACHED))]
    if kind not in (Kind.AT_RISK, Kind.BREACHED):
        return []
    resolves: list[Change] = [Resolve(key(AT_RISK))] if kind is Kind.BREACHED else []
    if not opens(outcome, catalogue):
        return resolves
    alertname = BREACHED if kind is Kind.BREACHED else AT_RISK
    severity = catalogue.notify(outcome.norm, outcome.municipality)
    reading = catalogue.norms[outcome.norm].reading
    return [Open(_alert(outcome, alertname, severity, reading, api_url)), *resolves]


def _local(instant: datetime | None) -> str:
    return instant.astimezone(AMSTERDAM).isoformat() if instant else "none"


def _alert(outcome: Outcome, alertname: str, severity: str, reading: str, api_url: str) -> Alert:
    what = "breached" if alertname == BREACHED else "at risk"
    return Alert(
        subject=outcome.subject,
        norm=outcome.norm,
        clock=outcome.instance,
        alertname=alertname,
        labels={
            "alertname": alertname,
            "norm": outcome.norm,
            "channel": outcome.channel,
            "municipality": outcome.municipality,
            "severity": severity,
            "subject": outcome.subject,
            "clock": str(outcome.instance),
        },
        annotations={
            "summary": (
                f"{outcome.norm} {what}: case {outcome.subject}, {outcome.municipality}, "
                f"deadline {_local(outcome.deadline)}"
            ),
            "description": reading,
            "deadline": _local(outcome.deadline),
            "started_at": _local(outcome.started_at),
            "outcome_id": outcome.id,
        },
        starts_at=outcome.decided_at or outcome.started_at,
        deadline=outcome.deadline,
        generator_url=f"{api_url.rstrip('/')}/v1/cases/{quote(outcome.subject, safe='')}",
    )


def expired(alert: Alert, now: datetime, max_age: timedelta) -> bool:
    """Whether the alert's clock is older than `max_age` (exactly `max_age` is not)."""
    return now - alert.clock_at > max_age


def step(current: Alert | None, change: Change, now: datetime, max_age: timedelta) -> Alert | None:
    """The alert's new state after `change`, or None when nothing changes.

    An open of a firing alert changes nothing (its `startsAt` stays); an open of a
    clock older than `max_age` is not made; a resolve of an alert not firing does
    nothing; a resolve ends the alert `now`.
    """
    if isinstance(change, Open):
        if (current is not None and current.firing) or expired(change.alert, now, max_age):
            return None
        return change.alert
    if current is None or not current.firing:
        return None
    return replace(current, ends_at=now)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a batch of outcomes does: the alerts that changed (their new state, one
    per key, to store and post) and the ids of the outcomes applied, each with the
    instant after which it may be forgotten is counted from."""

    alerts: tuple[Alert, ...]
    applied: tuple[tuple[str, datetime], ...]


def plan(
    outcomes: Iterable[Outcome],
    state: Mapping[AlertKey, Alert],
    seen: Set[str],
    catalogue: Catalogue,
    *,
    now: datetime,
    max_age: timedelta,
    api_url: str,
) -> Plan:
    """Apply `outcomes` in order to `state` (the stored alerts of their clocks).

    An outcome whose id is in `seen` (or earlier in the batch) is a duplicate and is
    dropped. Only outcomes that ask for a change are recorded as applied, and of a norm
    that opens nothing (`opens`) only those whose clock has an alert in `state`.
    """
    current = dict(state)
    changed: dict[AlertKey, Alert] = {}
    done = set(seen)
    applied: list[tuple[str, datetime]] = []
    for outcome in outcomes:
        if outcome.id in done:
            continue
        changes = alerts_for(outcome, catalogue, api_url=api_url)
        if not changes or (
            # A norm that opens nothing (the high-volume `count` norms) only resolves
            # what its clock has stored: otherwise nothing to apply or remember.
            not opens(outcome, catalogue) and not any(c.key in current for c in changes)
        ):
            continue
        done.add(outcome.id)
        applied.append((outcome.id, max(outcome.deadline or outcome.started_at, now)))
        for change in changes:
            new = step(current.get(change.key), change, now, max_age)
            if new is not None:
                current[change.key] = changed[change.key] = new
    return Plan(tuple(changed.values()), tuple(applied))


def keys_of(outcome: Outcome) -> tuple[AlertKey, AlertKey]:
    """The keys of the two alerts an outcome's clock can have."""
    return (
        (outcome.subject, outcome.norm, outcome.instance, AT_RISK),
        (outcome.subject, outcome.norm, outcome.instance, BREACHED),
    )


def payload(alert: Alert, now: datetime, resend_interval: timedelta) -> dict[str, Any]:
    """The alert for Alertmanager's `POST /api/v2/alerts`.

    A firing alert ends `4 * resend_interval` from now (it is sent again before that,
    so it only ends if the notifier stops sending); a resolved one at its `ends_at`.
    """
    ends_at = alert.ends_at or now + 4 * resend_interval
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": alert.starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "generatorURL": alert.generator_url,
    }
