"""The processor on the real broker: events in, outcomes and dead letters out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.shared.kafka import KafkaSettings
from services.sla_processor import due_records
from services.sla_processor.handler import partition_of
from tests.support.events import ago, as_record, call_event
from tests.support.kafka_io import produce, read_topic
from tests.support.services import eventually
from tests.support.system import kafka_env

pytestmark = pytest.mark.integration


def processor_env(kafka: KafkaSettings, data_dir: Path, port: int) -> dict[str, str]:
    return {
        **kafka_env(kafka),
        "NORMWACHT_PROCESSOR_APP_ID": f"normwacht-sla-{uuid.uuid4().hex[:8]}",
        "NORMWACHT_PROCESSOR_DATA_DIR": str(data_dir),
        "NORMWACHT_PROCESSOR_WEB_PORT": str(port),
    }


def outcome_kinds(
    kafka: KafkaSettings, expect: int, norm: str = "phone.answer"
) -> dict[str, list[str]]:
    """Kinds of the outcomes of `norm`, per case, in publication order."""
    kinds: dict[str, list[str]] = {}
    for record in read_topic(kafka.bootstrap, kafka.outcomes_topic, expect=expect):
        outcome = json.loads(record.value)
        assert record.key == outcome["subject"].encode()
        if outcome["norm"] == norm:
            kinds.setdefault(outcome["subject"], []).append(outcome["kind"])
    return kinds


def test_phone_answer_outcomes_and_dead_letters(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    events = [
        # Queued 25 s ago and never answered: breached by the timer.
        call_event("UNANSWERED", "queued", ago(25)),
        # Answered after 5 s: met.
        call_event("ANSWERED", "queued", ago(30)),
        call_event("ANSWERED", "answered", ago(25)),
        # Caller hung up after 4 s: excluded.
        call_event("HUNG-UP", "queued", ago(30)),
        call_event("HUNG-UP", "abandoned", ago(26)),
    ]
    duplicate = events[1]
    produce(
        kafka_settings.bootstrap,
        kafka_settings.events_topic,
        [as_record(e) for e in events]
        + [
            as_record(duplicate),
            (b"POISON", b"\x00 not json"),
            (b"OTHER-KEY", as_record(events[0])[1]),
        ],
    )
    # 7 of phone.answer, 1 phone.transfers clock opened by the answer.
    assert outcome_kinds(kafka_settings, expect=8) == {
        "UNANSWERED": ["opened", "breached"],
        "ANSWERED": ["opened", "met"],
        "HUNG-UP": ["opened", "excluded"],
    }
    dead = read_topic(kafka_settings.bootstrap, kafka_settings.dead_letter_topic, expect=2)
    assert [(d.key, d.headers["normwacht-error"]) for d in dead] == [
        (b"POISON", b"invalid_event"),
        (b"OTHER-KEY", b"key_mismatch"),
    ]
    assert dead[0].value == b"\x00 not json"  # the original bytes, untouched
    assert b"origin" not in dead[0].headers["normwacht-error-detail"]

    metrics = httpx.get(f"{processor}/metrics").text
    labels = 'channel="phone",municipality="bergen",norm="phone.answer"'
    assert f"normwacht_sla_breaches_total{{{labels}}} 1.0" in metrics
    assert f"normwacht_sla_met_total{{{labels}}} 1.0" in metrics
    assert f"normwacht_sla_excluded_total{{{labels}}} 1.0" in metrics
    assert 'normwacht_processor_dead_letters_total{reason="invalid_event"} 1.0' in metrics
    assert 'normwacht_sla_open_timers{municipality="bergen",norm="phone.answer"} 0.0' in metrics


def test_a_record_too_large_to_forward_is_parked_without_its_bytes(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    """The broker takes records up to about 1 MiB; the processor's producer sends up to
    1,000,000 bytes. A larger record cannot be forwarded whole, and must not stop the agent."""
    huge = b"{" + b" " * 1_000_300 + b"}"
    produce(kafka_settings.bootstrap, kafka_settings.events_topic,
            [(b"HUGE", huge), as_record(call_event("AFTER", "queued", ago(30))),
             as_record(call_event("AFTER", "answered", ago(25)))])  # fmt: skip
    [dead] = read_topic(kafka_settings.bootstrap, kafka_settings.dead_letter_topic, expect=1)
    assert (dead.key, dead.headers["normwacht-error"]) == (b"HUGE", b"invalid_event")
    assert not dead.value  # parked without its bytes (kafka-python reads them as None)
    assert dead.headers["normwacht-value-dropped"] == str(len(huge)).encode()
    assert outcome_kinds(kafka_settings, expect=3) == {"AFTER": ["opened", "met"]}


def test_due_records_not_written_by_the_processor_are_dead_lettered(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    """Anyone who may write the events topic can set the due-record header: the processor
    acts on its own due-records only, parks the others with the reason, and carries on."""
    bootstrap, events = kafka_settings.bootstrap, kafka_settings.events_topic
    subject = "FORGED"
    produce(bootstrap, events, [as_record(call_event(subject, "queued", ago(2)))])
    key = os.environ["NORMWACHT_PROCESSOR_DUE_RECORD_KEY"].encode()  # tests/conftest.py
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    forged = [
        b"{not json",
        due_records.write(b"not the processor's key", subject, in_an_hour),
        due_records.write(key, subject, in_an_hour),  # its key, but an hour ahead
    ]
    produce(bootstrap, events, [(subject.encode(), value) for value in forged],
            headers=[(due_records.HEADER, b"1")])  # fmt: skip
    produce(bootstrap, events, [as_record(call_event(subject, "answered", ago(1)))])

    dead = read_topic(bootstrap, kafka_settings.dead_letter_topic, expect=3)
    assert [(d.value, d.headers["normwacht-error"]) for d in dead] == [
        (forged[0], b"invalid_due_record"),
        (forged[1], b"unsigned_due_record"),
        (forged[2], b"due_record_from_the_future"),
    ]
    # None moved the watermark an hour on: answered in time, the call is met, never breached.
    assert outcome_kinds(kafka_settings, expect=2) == {subject: ["opened", "met"]}
    metrics = httpx.get(f"{processor}/metrics").text
    for reason in ("invalid_due_record", "unsigned_due_record", "due_record_from_the_future"):
        assert f'normwacht_processor_dead_letters_total{{reason="{reason}"}} 1.0' in metrics


def test_records_outside_their_case_are_dead_lettered_and_the_case_goes_on(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    """A client whose partitioner is not the Java client's (librdkafka's default hashes with
    CRC32) would split a case over two partitions, and so two workers; a partner naming
    another municipality would act on a case that is not its municipality's. Both records
    are parked with the reason, and the case takes the next event."""
    bootstrap, events = kafka_settings.bootstrap, kafka_settings.events_topic
    subject = "SPLIT-CASE"
    home = partition_of(subject, kafka_settings.partitions)
    produce(bootstrap, events, [as_record(call_event(subject, "queued", ago(10)))])
    elsewhere = (home + 1) % kafka_settings.partitions
    produce(bootstrap, events, [as_record(call_event(subject, "answered", ago(9)))],
            partition=elsewhere)  # fmt: skip
    heiloo = call_event(subject, "answered", ago(8), municipality="heiloo")
    produce(bootstrap, events, [as_record(heiloo)])
    answered = call_event(subject, "answered", ago(7))
    produce(bootstrap, events, [as_record(answered)])

    dead = read_topic(bootstrap, kafka_settings.dead_letter_topic, expect=2)
    # The origin is topic/partition/offset.
    parked = {(d.headers["normwacht-error"], d.headers["normwacht-origin"].split(b"/")[1])
              for d in dead}  # fmt: skip
    assert parked == {
        (b"wrong_partition", str(elsewhere).encode()),
        (b"municipality_mismatch", str(home).encode()),
    }
    records = read_topic(bootstrap, kafka_settings.outcomes_topic, expect=3)
    outcomes = [json.loads(record.value) for record in records]
    met = [o for o in outcomes if o["norm"] == "phone.answer" and o["kind"] == "met"]
    assert [datetime.fromisoformat(o["decided_at"]) for o in met] == [
        datetime.fromisoformat(answered["time"])
    ]
    metrics = httpx.get(f"{processor}/metrics").text
    for reason in ("wrong_partition", "municipality_mismatch"):
        assert f'normwacht_processor_dead_letters_total{{reason="{reason}"}} 1.0' in metrics


def test_late_answer_dated_in_time_corrects_the_breach(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    queued = call_event("LATE-NEWS", "queued", ago(60))
    produce(kafka_settings.bootstrap, kafka_settings.events_topic, [as_record(queued)])
    assert outcome_kinds(kafka_settings, expect=2) == {"LATE-NEWS": ["opened", "breached"]}
    # The telephony system's answered event was delayed: it happened 10 s into the call.
    produce(
        kafka_settings.bootstrap,
        kafka_settings.events_topic,
        [as_record(call_event("LATE-NEWS", "answered", ago(50)))],
    )
    records = read_topic(kafka_settings.bootstrap, kafka_settings.outcomes_topic, expect=4)
    [correction] = [
        o for o in map(json.loads, (r.value for r in records))
        if o["norm"] == "phone.answer" and o["kind"] == "met"
    ]  # fmt: skip
    assert (correction["kind"], correction["corrects"]) == ("met", "breached")
    assert correction["id"] == "LATE-NEWS/phone.answer/1/met"

    def corrections() -> str | None:
        text = httpx.get(f"{processor}/metrics").text
        return text if "normwacht_sla_corrections_total{" in text else None

    metrics = eventually(corrections)
    labels = 'channel="phone",municipality="bergen",norm="phone.answer"'
    assert f"normwacht_sla_corrections_total{{{labels}}} 1.0" in metrics


def test_open_clock_is_counted_until_it_breaches(
    processor: str, kafka_settings: KafkaSettings
) -> None:
    # Queued 2 s ago: at risk 13 s from now (at 15 s), breached 18 s from now. The worker
    # must have read it before it is at risk, or it skips that step (a live signal only):
    # time enough on a loaded machine.
    produce(
        kafka_settings.bootstrap,
        kafka_settings.events_topic,
        [as_record(call_event("WAITING", "queued", ago(2), municipality="heiloo"))],
    )
    gauge = 'normwacht_sla_open_timers{municipality="heiloo",norm="phone.answer"}'
    eventually(lambda: f"{gauge} 1.0" in httpx.get(f"{processor}/metrics").text)
    eventually(lambda: f"{gauge} 0.0" in httpx.get(f"{processor}/metrics").text, timeout_s=30)
    assert outcome_kinds(kafka_settings, expect=3) == {"WAITING": ["opened", "at_risk", "breached"]}


def test_refuses_to_start_on_an_invalid_catalogue(tmp_path: Path) -> None:
    broken = tmp_path / "catalogue.yaml"
    broken.write_text("version: 1\nnorms:\n  - id: phone.answer\n    channel: phone\n")
    result = subprocess.run(
        [sys.executable, "-m", "normwacht", "processor"],
        env={**os.environ, "NORMWACHT_CATALOGUE": str(broken)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid norm catalogue" in result.stderr
    assert f"{broken}:3: norms.0.section: Field required" in result.stderr
