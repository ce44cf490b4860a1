"""The notifier's state on a SQLite file: what it forgets, and what it must not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from normwacht.core.catalogue import Catalogue
from normwacht.core.engine import Outcome
from services.notifier import store
from services.notifier.rules import BREACHED, keys_of, plan

API = "http://api.example:8001"
WEEK = timedelta(days=7)
DEADLINE = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
LATER = DEADLINE + timedelta(days=30)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = store.connect(f"sqlite:///{tmp_path / 'notifier.db'}")
    yield engine
    engine.dispose()


def outcome(subject: str, kind: str, **extra: Any) -> Outcome:
    fields: dict[str, Any] = {
        "subject": subject,
        "norm": "objection.decision",
        "instance": 1,
        "kind": kind,
        "channel": "objection",
        "municipality": "bergen",
        "started_at": DEADLINE - timedelta(weeks=12),
        "deadline": DEADLINE,
        "decided_at": DEADLINE,
    }
    return Outcome.model_validate(fields | extra)


def apply(
    engine: Engine, catalogue: Catalogue, now: datetime, *outcomes: Outcome, accepted: bool = True
) -> None:
    """What the consumer does with a batch; `accepted`: Alertmanager accepted the post."""
    with Session(engine) as session, session.begin():
        state, seen = store.load(
            session, (k for o in outcomes for k in keys_of(o)), (o.id for o in outcomes)
        )
        result = plan(outcomes, state, seen, catalogue, now=now, max_age=WEEK, api_url=API)
        store.save(session, result)
        if accepted:
            store.announce(session, [alert for alert in result.alerts if not alert.firing])


def sent(engine: Engine) -> set[tuple[str, bool]]:
    """What the next resend posts, after forgetting what is older than `max_age`."""
    with Session(engine) as session, session.begin():
        store.forget(session, LATER - WEEK)
        return {(alert.subject, alert.firing) for alert in store.to_send(session)}


def test_a_standing_breach_is_kept_past_max_age_until_an_outcome_resolves_it(
    engine: Engine, catalogue: Catalogue
) -> None:
    """A decision on an objection overdue for a month: its alert must fire all along, not
    be forgotten after `max_age` (Alertmanager would then announce it resolved)."""
    assert catalogue.notify("objection.decision", "bergen") != "count"
    at = DEADLINE + timedelta(seconds=1)
    apply(engine, catalogue, at, outcome("standing", "breached"))
    apply(engine, catalogue, at, outcome("done", "breached"))
    apply(engine, catalogue, at, outcome("done", "met", corrects="breached"))
    apply(engine, catalogue, at, outcome("pending", "breached"))
    apply(engine, catalogue, at, outcome("pending", "met", corrects="breached"), accepted=False)
    with Session(engine) as session, session.begin():
        assert store.forget(session, LATER - WEEK) == 1  # "done": resolved and announced
    # Firing, and a resolution Alertmanager has not accepted yet, are sent again.
    assert sent(engine) == {("standing", True), ("pending", False)}

    # A month after the deadline the objection is decided: the alert resolves.
    apply(engine, catalogue, LATER, outcome("standing", "met", corrects="breached"))
    with Session(engine) as session:
        state, _ = store.load(session, [("standing", "objection.decision", 1, BREACHED)], [])
    assert [alert.ends_at for alert in state.values()] == [LATER]
    assert sent(engine) == {("pending", False)}


def test_load_gives_the_alerts_asked_for_and_no_other_of_their_case(
    engine: Engine, catalogue: Catalogue
) -> None:
    at = DEADLINE + timedelta(seconds=1)
    apply(engine, catalogue, at, outcome("case", "breached"))
    apply(engine, catalogue, at, outcome("case", "breached", instance=2))
    apply(engine, catalogue, at, outcome("other", "breached"))
    first = ("case", "objection.decision", 1, BREACHED)
    with Session(engine) as session:
        state, _ = store.load(session, [first, ("nobody", "objection.decision", 1, BREACHED)], [])
    assert list(state) == [first]
