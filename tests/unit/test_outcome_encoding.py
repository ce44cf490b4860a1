"""The processor writes outcomes with orjson (codec.encode_outcome), byte for byte as
`Outcome.model_dump_json()`, whose JSON the outcomes topic's schema and every reader
know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from normwacht.core.engine import Kind, Outcome
from services.sla_processor.codec import encode_outcome

ZONES = st.sampled_from(
    [
        UTC,
        ZoneInfo("UTC"),
        ZoneInfo("Europe/Amsterdam"),
        timezone(timedelta(hours=1)),
        timezone(timedelta(0)),
        timezone(-timedelta(hours=3, minutes=30)),
    ]
)
INSTANTS = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001  (hypothesis bounds are naive;
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001   the values get a zone)
    timezones=ZONES,
)
TEXT = st.text(min_size=1, max_size=40)


OUTCOMES = st.builds(
    Outcome,
    subject=TEXT,
    norm=TEXT,
    instance=st.integers(min_value=1, max_value=300_000),
    kind=st.sampled_from(Kind),
    channel=TEXT,
    municipality=TEXT,
    started_at=INSTANTS,
    deadline=st.none() | INSTANTS,
    decided_at=st.none() | INSTANTS,
    corrects=st.none() | st.sampled_from(Kind),
    revision=st.integers(min_value=1, max_value=50),
)


@settings(deadline=None)  # a shared CI machine may stall any one example
@given(OUTCOMES)
def test_an_outcome_is_encoded_as_pydantic_dumps_it(outcome: Outcome) -> None:
    assert encode_outcome(outcome) == outcome.model_dump_json().encode()
