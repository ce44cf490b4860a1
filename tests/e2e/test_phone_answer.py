"""The whole system as a user runs it: broker, processor, ingest and api as real processes."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.events import ago, call_event
from tests.support.kafka_io import read_topic
from tests.support.scenario import NOTE_KINDS
from tests.support.services import eventually
from tests.support.system import AUTH, System, post

pytestmark = pytest.mark.e2e


def test_a_breach_a_met_call_and_an_excluded_call(system: System) -> None:
    post(
        system,
        [
            # Queued 19 s ago, nobody picks up: the breach is due in about a second.
            call_event("E2E-BREACH", "queued", ago(19), municipality="castricum"),
            call_event("E2E-MET", "queued", ago(12), municipality="castricum"),
            call_event("E2E-MET", "answered", ago(3), municipality="castricum"),
            call_event("E2E-EXCLUDED", "queued", ago(10), municipality="castricum"),
            call_event("E2E-EXCLUDED", "abandoned", ago(8), municipality="castricum"),
        ],
    )
    labels = 'channel="phone",municipality="castricum",norm="phone.answer"'

    def metrics_show_everything() -> str | None:
        text = httpx.get(f"{system.processor}/metrics").text
        wanted = [
            f"normwacht_sla_{kind}_total{{{labels}}} 1.0"
            for kind in ("breaches", "met", "excluded")
        ]
        return text if all(line in text for line in wanted) else None

    eventually(metrics_show_everything, timeout_s=30)

    # 3 opened, 1 at risk, 3 decided, and the phone.transfers clock the answer opened.
    records = read_topic(system.kafka.bootstrap, system.kafka.outcomes_topic, expect=8)
    decided = {
        (o["subject"], o["kind"])
        for o in map(json.loads, (r.value for r in records))
        if o["norm"] == "phone.answer" and o["kind"] not in ("opened", *NOTE_KINDS)
    }
    assert decided == {("E2E-BREACH", "breached"), ("E2E-MET", "met"), ("E2E-EXCLUDED", "excluded")}

    def breach_listed() -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(
            f"{system.api}/v1/breaches", headers=AUTH
        ).json()["items"]
        return items

    [breach] = eventually(breach_listed)
    assert (breach["subject"], breach["norm"], breach["municipality"]) == (
        "E2E-BREACH",
        "phone.answer",
        "castricum",
    )
    met = eventually(
        lambda: httpx.get(f"{system.api}/v1/cases/E2E-MET", headers=AUTH).json().get("clocks")
    )
    assert met[0]["status"] == "met"
    excluded = eventually(
        lambda: httpx.get(f"{system.api}/v1/cases/E2E-EXCLUDED", headers=AUTH).json().get("clocks")
    )
    assert excluded[0]["status"] == "excluded"
