"""A case is bounded: past `MAX_FACTS` the processor refuses new events, never silently.

Through the real processor on the real broker: one subject gets `MAX_FACTS` facts, the
last of them a call nobody answers. The events after it go to the dead-letter topic
with reason `case_full` and are counted; a duplicate of an event the case holds is no
dead letter; and the clock the case already has is still decided. The processor is
then restarted, so the case is read back from its stored head, chunks and rows, and
the duplicate sent again changes nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from normwacht.core.engine import MAX_FACTS
from services.shared.kafka import KafkaSettings
from tests.integration.test_processor import processor_env
from tests.support.broker import free_port
from tests.support.events import ago, as_record, call_event
from tests.support.kafka_io import produce, read_topic
from tests.support.services import eventually, running_service
from tests.support.system import create_topics

pytestmark = pytest.mark.integration

SUBJECT = "BUSY-LINE-1"


def a_full_case() -> list[dict[str, object]]:
    """`MAX_FACTS` call events on one case, from an hour ago: 499 calls answered in 5 s, then
    two calls queued a minute apart and never answered (instances 500 and 501)."""
    start = ago(3600)
    events = []
    for call in range(MAX_FACTS // 2 - 1):
        at = start + timedelta(seconds=6 * call)
        events.append(call_event(SUBJECT, "queued", at, event_id=f"q-{call}"))
        events.append(
            call_event(SUBJECT, "answered", at + timedelta(seconds=5), event_id=f"a-{call}")
        )
    last = start + timedelta(seconds=6 * (MAX_FACTS // 2))
    events.append(call_event(SUBJECT, "queued", last, event_id="q-last"))
    events.append(call_event(SUBJECT, "queued", last + timedelta(seconds=60), event_id="q-later"))
    return events


def test_a_full_case_refuses_new_events_and_still_decides_its_clocks(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    port = free_port()
    env = processor_env(kafka_settings, tmp_path / "state", port)
    create_topics(kafka_settings, env["NORMWACHT_PROCESSOR_APP_ID"])
    events = a_full_case()
    assert len(events) == MAX_FACTS
    refused = [call_event(SUBJECT, "queued", ago(60), event_id=f"extra-{n}") for n in range(3)]
    duplicate = events[11]  # an answer the case holds
    produce(
        kafka_settings.bootstrap,
        kafka_settings.events_topic,
        [as_record(e) for e in [*events, *refused, duplicate]],
    )
    with running_service("processor", env, f"http://127.0.0.1:{port}/healthz", tmp_path):
        dead = read_topic(kafka_settings.bootstrap, kafka_settings.dead_letter_topic, expect=3)
        assert sorted(json.loads(d.value)["id"] for d in dead) == [e["id"] for e in refused]
        assert {d.headers["normwacht-error"] for d in dead} == {b"case_full"}
        assert b"holds 1000 facts" in dead[0].headers["normwacht-error-detail"]
        metric = 'normwacht_processor_dead_letters_total{reason="case_full"} 3.0'
        eventually(lambda: metric in httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        breached = last_call_outcomes(kafka_settings)
        assert [o["kind"] for o in breached] == ["opened", "breached"]
        # The refused calls made no clocks: the last call is the case's last number.
        assert breached[0]["instance"] == MAX_FACTS // 2
    # Read back after a restart, the full case takes a duplicate as a duplicate.
    produce(kafka_settings.bootstrap, kafka_settings.events_topic, [as_record(duplicate)])
    with running_service("processor", env, f"http://127.0.0.1:{port}/healthz", tmp_path):
        eventually(lambda: answered_events(port) >= 1)
    dead = read_topic(kafka_settings.bootstrap, kafka_settings.dead_letter_topic)
    assert {json.loads(d.value)["id"] for d in dead} == {e["id"] for e in refused}
    outcomes = read_topic(kafka_settings.bootstrap, kafka_settings.outcomes_topic)
    ids = {json.loads(r.value)["id"] for r in outcomes}
    assert len(ids) == OUTCOMES  # nothing new: no clock for a refused call, none for the copy


def answered_events(port: int) -> float:
    """`call.answered` events this worker applied (a duplicate counts: it is taken)."""
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith('normwacht_processor_events_total{type="nl.buch.call.answered"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


OUTCOMES = (MAX_FACTS // 2 + 1) * 2 + 1 + (MAX_FACTS // 2 - 2) * 2
"""opened and met or breached for each of the 501 calls' phone.answer clocks; for
phone.transfers, opened for the first answer's count (never ended), and opened and excluded
for each of the 498 answers after it: the case's count had no stop, so they count on it."""


def last_call_outcomes(kafka: KafkaSettings) -> list[dict[str, object]]:
    """The outcomes of the last-but-one call's phone.answer clock (instance 500)."""
    records = read_topic(kafka.bootstrap, kafka.outcomes_topic, expect=OUTCOMES, timeout_s=120)
    assert len(records) == OUTCOMES
    outcomes = [json.loads(r.value) for r in records]
    return [o for o in outcomes if o["norm"] == "phone.answer" and o["instance"] == MAX_FACTS // 2]
