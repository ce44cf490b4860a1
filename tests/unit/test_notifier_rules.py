"""The notifier's mapping from outcomes to alerts, and its duplicate rule: pure, no fakes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Outcome
from services.notifier.alertmanager import CHUNK, Alertmanager
from services.notifier.metrics import NotifierMetrics
from services.notifier.rules import (
    AT_RISK,
    BREACHED,
    Alert,
    AlertKey,
    Open,
    Resolve,
    alerts_for,
    payload,
    plan,
    step,
)

API = "http://api.example:8001"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 03:00 in Amsterdam (CET)
WEEK = timedelta(days=7)


def outcome(kind: str, norm: str = "report.urgent", **extra: Any) -> Outcome:
    fields: dict[str, Any] = {
        "subject": "c-81f2",
        "norm": norm,
        "instance": 2,
        "kind": kind,
        "channel": "public_space",
        "municipality": "bergen",
        "started_at": DEADLINE - timedelta(hours=4),
        "deadline": DEADLINE,
        "decided_at": DEADLINE if kind == "breached" else DEADLINE - timedelta(hours=1),
    }
    return Outcome.model_validate(fields | extra)


def key(alertname: str, norm: str = "report.urgent") -> AlertKey:
    return ("c-81f2", norm, 2, alertname)


def kinds(changes: list[Open | Resolve]) -> list[tuple[str, str]]:
    return [("open" if isinstance(c, Open) else "resolve", c.key[3]) for c in changes]


def test_a_breach_opens_its_alert_with_exactly_these_labels(catalogue: Catalogue) -> None:
    [opened, resolved] = alerts_for(outcome("breached"), catalogue, api_url=API)
    assert isinstance(opened, Open)
    assert resolved == Resolve(key(AT_RISK))
    alert = opened.alert
    assert alert.labels == {
        "alertname": "NormBreached",
        "norm": "report.urgent",
        "channel": "public_space",
        "municipality": "bergen",
        "severity": "page",
        "subject": "c-81f2",
        "clock": "2",
    }
    assert alert.annotations == {
        "summary": (
            "report.urgent breached: case c-81f2, bergen, deadline 2026-12-03T03:00:00+01:00"
        ),
        "description": catalogue.norms["report.urgent"].reading,
        "deadline": "2026-12-03T03:00:00+01:00",
        "started_at": "2026-12-02T23:00:00+01:00",
        "outcome_id": "c-81f2/report.urgent/2/breached",
    }
    assert alert.generator_url == "http://api.example:8001/v1/cases/c-81f2"
    assert alert.starts_at == DEADLINE
    assert alert.firing


def test_a_notice_norm_is_a_notice(catalogue: Catalogue) -> None:
    [opened] = alerts_for(
        outcome("at_risk", norm="email.answer", channel="email"), catalogue, api_url=API
    )
    assert isinstance(opened, Open)
    assert opened.alert.labels["severity"] == "notice"
    assert opened.alert.labels["alertname"] == "NormAtRisk"
    assert opened.alert.annotations["summary"].startswith("email.answer at risk: case c-81f2")


@pytest.mark.parametrize(
    ("kind", "corrects", "expected"),
    [
        ("at_risk", None, [("open", AT_RISK)]),
        ("breached", None, [("open", BREACHED), ("resolve", AT_RISK)]),
        ("breached", "met", [("open", BREACHED), ("resolve", AT_RISK)]),
        ("met", None, [("resolve", BREACHED), ("resolve", AT_RISK)]),
        ("met", "breached", [("resolve", BREACHED), ("resolve", AT_RISK)]),
        ("excluded", None, [("resolve", BREACHED), ("resolve", AT_RISK)]),
        ("cancelled", "breached", [("resolve", BREACHED), ("resolve", AT_RISK)]),
        ("stopped_late", None, [("resolve", BREACHED), ("resolve", AT_RISK)]),
        ("opened", "breached", [("resolve", BREACHED)]),
        ("opened", None, []),
    ],
)
def test_each_kind_opens_or_resolves(
    catalogue: Catalogue, kind: str, corrects: str | None, expected: list[tuple[str, str]]
) -> None:
    changes = alerts_for(outcome(kind, corrects=corrects), catalogue, api_url=API)
    assert kinds(changes) == expected


def test_a_count_norm_and_an_unknown_norm_open_nothing(catalogue: Catalogue) -> None:
    assert catalogue.notify("phone.answer", "bergen") == "count"
    for norm in ("phone.answer", "no.such_norm"):
        assert alerts_for(outcome("at_risk", norm=norm), catalogue, api_url=API) == []
        changes = alerts_for(outcome("breached", norm=norm), catalogue, api_url=API)
        assert changes == [Resolve(key(AT_RISK, norm))]


@pytest.mark.parametrize("norm", ["phone.answer", "no.such_norm"])
def test_an_alert_is_resolved_after_its_norm_became_count_or_left_the_catalogue(
    catalogue: Catalogue, norm: str
) -> None:
    """The alert opened while the norm notified; the `met` comes after the catalogue
    changed (`notify: count`, or the norm removed): it still resolves the alert."""
    met, opened = outcome("met", norm=norm), outcome("opened", norm=norm, corrects="breached")
    assert kinds(alerts_for(met, catalogue, api_url=API)) == [
        ("resolve", BREACHED),
        ("resolve", AT_RISK),
    ]
    assert kinds(alerts_for(opened, catalogue, api_url=API)) == [("resolve", BREACHED)]
    stored = replace(_alert(catalogue), norm=norm)
    assert stored.key == key(BREACHED, norm)
    assert stored.firing
    result = plan([met], {stored.key: stored}, set(), catalogue, now=NOW, max_age=WEEK, api_url=API)
    assert [(alert.key, alert.ends_at) for alert in result.alerts] == [(stored.key, NOW)]
    assert [outcome_id for outcome_id, _ in result.applied] == [met.id]


def test_a_subject_is_quoted_in_the_link(catalogue: Catalogue) -> None:
    [opened, _] = alerts_for(outcome("breached", subject="a/b c"), catalogue, api_url=API + "/")
    assert isinstance(opened, Open)
    assert opened.alert.generator_url == "http://api.example:8001/v1/cases/a%2Fb%20c"


def _alert(catalogue: Catalogue, **extra: Any) -> Alert:
    [opened, _] = alerts_for(outcome("breached", **extra), catalogue, api_url=API)
    assert isinstance(opened, Open)
    return opened.alert


def test_step_opens_once_and_resolves_once(catalogue: Catalogue) -> None:
    alert = _alert(catalogue)
    assert step(None, Open(alert), NOW, WEEK) == alert
    assert step(alert, Open(alert), NOW, WEEK) is None  # firing already: startsAt stays
    resolved = step(alert, Resolve(alert.key), NOW, WEEK)
    assert resolved is not None
    assert (resolved.ends_at, resolved.starts_at) == (NOW, alert.starts_at)
    assert step(resolved, Resolve(alert.key), NOW, WEEK) is None
    assert step(None, Resolve(alert.key), NOW, WEEK) is None
    assert step(resolved, Open(alert), NOW, WEEK) == alert  # a new outcome may reopen


def test_an_old_clock_opens_nothing(catalogue: Catalogue) -> None:
    alert = _alert(catalogue)
    assert step(None, Open(alert), DEADLINE + WEEK, WEEK) == alert  # exactly max_age: opens
    assert step(None, Open(alert), DEADLINE + WEEK + timedelta(seconds=1), WEEK) is None


def _plan(catalogue: Catalogue, *outcomes: Outcome, state: dict[AlertKey, Alert] | None = None,
          seen: set[str] | None = None) -> dict[AlertKey, Alert]:  # fmt: skip
    result = plan(
        outcomes, state or {}, seen or set(), catalogue, now=NOW, max_age=WEEK, api_url=API
    )
    return {alert.key: alert for alert in result.alerts}


def test_a_duplicate_in_the_batch_or_seen_before_changes_nothing(catalogue: Catalogue) -> None:
    breached, met = outcome("breached"), outcome("met", corrects="breached")
    # breached, met, then breached again (a redelivery): the breach stays resolved.
    after = _plan(catalogue, breached, met, breached)
    assert after[key(BREACHED)].ends_at == NOW
    # The same across batches: the first batch's ids are known.
    first = plan([breached, met], {}, set(), catalogue, now=NOW, max_age=WEEK, api_url=API)
    assert [outcome_id for outcome_id, _ in first.applied] == [breached.id, met.id]
    state = {alert.key: alert for alert in first.alerts}
    assert _plan(catalogue, breached, state=state, seen={breached.id, met.id}) == {}


def test_a_new_breach_of_a_corrected_clock_reopens(catalogue: Catalogue) -> None:
    breached, met = outcome("breached"), outcome("met", corrects="breached")
    again = outcome("breached", corrects="met", revision=2)
    after = _plan(catalogue, breached, met, again)
    assert after[key(BREACHED)].firing
    assert after[key(BREACHED)].annotations["outcome_id"] == "c-81f2/report.urgent/2/breached/2"


def test_at_risk_then_breached_then_stopped_late(catalogue: Catalogue) -> None:
    after = _plan(catalogue, outcome("at_risk"), outcome("breached"))
    assert after[key(AT_RISK)].ends_at == NOW  # opened and resolved in one batch
    assert after[key(BREACHED)].firing
    later = _plan(catalogue, outcome("stopped_late"), state=after)
    assert later[key(BREACHED)].ends_at == NOW
    assert key(AT_RISK) not in later  # resolved already: no change


def test_outcomes_of_count_norms_are_not_remembered(catalogue: Catalogue) -> None:
    """Unless their clock has an alert to resolve (above): they are the high-volume ones."""
    result = plan(
        [
            outcome("breached", norm="phone.answer"),
            outcome("met", norm="phone.answer", instance=3),
            outcome("opened"),
        ],
        {},
        set(),
        catalogue,
        now=NOW,
        max_age=WEEK,
        api_url=API,
    )
    assert (result.alerts, result.applied) == ((), ())


def test_an_id_is_kept_max_age_after_its_deadline_or_after_it_was_applied(
    catalogue: Catalogue,
) -> None:
    """A correction of an old clock may come long after the deadline; its id must outlive
    its record in the topic, which a replay may read again."""
    at_risk = outcome("at_risk", deadline=NOW + timedelta(days=2))
    late = outcome("met", corrects="breached", deadline=NOW - timedelta(days=30))
    result = plan([at_risk, late], {}, set(), catalogue, now=NOW, max_age=WEEK, api_url=API)
    assert result.applied == ((at_risk.id, NOW + timedelta(days=2)), (late.id, NOW))


def test_payload_keeps_a_firing_alert_alive_for_four_intervals(catalogue: Catalogue) -> None:
    alert = _alert(catalogue)
    firing = payload(alert, NOW, timedelta(seconds=60))
    assert firing["endsAt"] == (NOW + timedelta(minutes=4)).isoformat()
    assert firing["startsAt"] == DEADLINE.isoformat()
    assert set(firing) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    resolved = step(alert, Resolve(alert.key), NOW - timedelta(seconds=5), WEEK)
    assert resolved is not None
    ended = payload(resolved, NOW, timedelta(seconds=60))
    assert ended["endsAt"] == (NOW - timedelta(seconds=5)).isoformat()
    assert ended["startsAt"] == DEADLINE.isoformat()


def test_many_alerts_go_to_alertmanager_in_requests_of_at_most_a_chunk(
    catalogue: Catalogue,
) -> None:
    """A resend after an outage may hold thousands of alerts: one request each 500."""
    alerts = [
        change.alert
        for n in range(1201)
        for change in alerts_for(
            outcome("breached", subject=f"CASE-{n}"), catalogue, api_url="http://api"
        )
        if isinstance(change, Open)
    ]
    bodies: list[list[dict[str, Any]]] = []

    def alertmanager(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200)

    async def post() -> None:
        transport = httpx.MockTransport(alertmanager)  # the HTTP side only; no Alertmanager
        async with httpx.AsyncClient(transport=transport) as client:
            poster = Alertmanager("http://am", client, NotifierMetrics(), timedelta(minutes=1))
            await poster.post(alerts)

    asyncio.run(post())
    assert [len(body) for body in bodies] == [CHUNK, CHUNK, 201]
    subjects = [alert["labels"]["subject"] for body in bodies for alert in body]
    assert sorted(subjects) == sorted(f"CASE-{n}" for n in range(1201))
