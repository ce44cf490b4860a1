"""The API on the real broker and a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import gc
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.conn import AIOKafkaConnection
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from normwacht.catalogue_file import load as load_catalogue
from normwacht.cli import app as cli
from normwacht.core.calendars import AMSTERDAM
from normwacht.core.engine import Kind, Outcome
from services.api.app import create_app
from services.api.consumer import OutcomeConsumer
from services.api.db import OutcomeRow, connect
from services.api.settings import ApiSettings
from services.shared.kafka import KafkaSettings
from services.shared.partners import DEVELOPMENT_TOKEN
from tests.support.kafka_io import produce
from tests.support.services import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DEVELOPMENT_READER = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}


@pytest.fixture
def api(kafka_settings: KafkaSettings, database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(
        kafka=kafka_settings,
        database_url=database_url,
        consumer_group="api-test",
        environment="development",  # the development token reads all (partners: test_partners)
    )
    with TestClient(create_app(settings), headers=DEVELOPMENT_READER) as client:
        yield client


def outcome(
    subject: str, kind: Kind, *, minute: int = 0, municipality: str = "castricum", **extra: object
) -> Outcome:
    start = T0 + timedelta(minutes=minute)
    return Outcome(
        subject=subject,
        norm="phone.answer",
        instance=1,
        kind=kind,
        channel="phone",
        municipality=municipality,
        started_at=start,
        deadline=start + timedelta(seconds=20),
        decided_at=start + timedelta(seconds=20)
        if kind is Kind.BREACHED
        else start + timedelta(seconds=5),
        **extra,  # type: ignore[arg-type,unused-ignore]
    )


def publish(kafka: KafkaSettings, *outcomes: Outcome) -> None:
    produce(
        kafka.bootstrap,
        kafka.outcomes_topic,
        [(o.subject.encode(), o.model_dump_json().encode()) for o in outcomes],
    )


def stored(api: TestClient, outcomes: dict[str, int]) -> bool:
    """Whether the API holds this many outcomes of each case's clock: cases lie in
    different partitions, so one case stored says nothing of another."""
    for subject, count in outcomes.items():
        response = api.get(f"/v1/cases/{subject}")
        if response.status_code != 200 or len(response.json()["clocks"][0]["outcomes"]) != count:
            return False
    return True


def breaches(api: TestClient, **params: str | int | bool) -> list[str]:
    response = api.get("/v1/breaches", params=params)
    assert response.status_code == 200, response.text
    return [item["subject"] for item in response.json()["items"]]


def test_outcomes_become_cases_and_breaches(api: TestClient, kafka_settings: KafkaSettings) -> None:
    publish(
        kafka_settings,
        outcome("A", Kind.OPENED),
        outcome("A", Kind.BREACHED),
        outcome("B", Kind.OPENED, minute=1),
        outcome("B", Kind.MET, minute=1),
        outcome("C", Kind.OPENED, minute=2, municipality="heiloo"),
        outcome("C", Kind.BREACHED, minute=2, municipality="heiloo"),
        outcome("C", Kind.MET, minute=2, municipality="heiloo", corrects=Kind.BREACHED),
        outcome("D", Kind.OPENED, minute=3),
    )
    eventually(lambda: stored(api, {"A": 2, "B": 2, "C": 3, "D": 1}))
    assert breaches(api) == ["A"]
    assert breaches(api, include_corrected=True) == ["A", "C"]
    assert breaches(api, municipality="heiloo") == []
    assert breaches(api, norm="email.answer") == []

    case = api.get("/v1/cases/C").json()
    [clock] = case["clocks"]
    assert (case["municipality"], clock["status"]) == ("heiloo", "met")
    assert clock["outcomes"] == ["opened", "breached", "met"]
    assert clock["deadline"].startswith("2026-11-24T09:02:20")

    assert api.get("/v1/cases/D").json()["clocks"][0]["status"] == "opened"
    missing = api.get("/v1/cases/NOPE")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_clock_shows_what_stands_for_it_whatever_its_corrections(
    api: TestClient, kafka_settings: KafkaSettings
) -> None:
    """A clock is its start: corrections, in either direction and repeated, move one row.

    E: met, then breached correcting met (a late call took the answer), then met again
    (revision 2, correcting breached). F: breached, then set running by a late pause
    (`opened` revision 2), so no standing breach. H: the same, then breached again: one
    standing breach, the second.
    """
    publish(
        kafka_settings,
        outcome("E", Kind.OPENED),
        outcome("E", Kind.MET),
        outcome("E", Kind.BREACHED, corrects=Kind.MET),
        outcome("E", Kind.MET, corrects=Kind.BREACHED, revision=2),
        outcome("F", Kind.OPENED, minute=1),
        outcome("F", Kind.BREACHED, minute=1),
        outcome("F", Kind.OPENED, minute=1, corrects=Kind.BREACHED, revision=2),
        outcome("H", Kind.OPENED, minute=3),
        outcome("H", Kind.BREACHED, minute=3),
        outcome("H", Kind.OPENED, minute=3, corrects=Kind.BREACHED, revision=2),
        outcome("H", Kind.BREACHED, minute=3, revision=2),
        outcome("G", Kind.OPENED, minute=2),
    )
    eventually(lambda: stored(api, {"E": 4, "F": 3, "H": 4, "G": 1}))
    [e] = api.get("/v1/cases/E").json()["clocks"]
    assert (e["instance"], e["status"]) == (1, "met")
    assert e["outcomes"] == ["opened", "met", "breached", "met"]
    [f] = api.get("/v1/cases/F").json()["clocks"]
    assert f["status"] == "opened"
    standing = api.get("/v1/breaches").json()["items"]
    assert [(b["id"], b["corrected"]) for b in standing] == [("H/phone.answer/1/breached/2", False)]
    assert breaches(api, include_corrected=True) == ["E", "F", "H", "H"]


def test_a_replayed_outcome_never_duplicates_a_row(
    api: TestClient, kafka_settings: KafkaSettings, database_url: str
) -> None:
    records = [outcome("R", Kind.OPENED), outcome("R", Kind.AT_RISK)]
    publish(kafka_settings, *records)
    # Replayed, then one more of R's: in R's partition, so once it is stored the replayed
    # records before it have been read.
    publish(kafka_settings, *records, outcome("R", Kind.BREACHED))
    eventually(lambda: stored(api, {"R": 3}))
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count()).select_from(OutcomeRow).where(OutcomeRow.subject == "R")
        )
    engine.dispose()
    assert count == 3
    assert breaches(api) == ["R"]


def test_a_late_stop_read_first_stands_for_its_breach(
    api: TestClient, kafka_settings: KafkaSettings
) -> None:
    """The topic keeps a week: a clock breached before that and stopped late since is
    first read as its `stopped_late`, and it counts as breached."""
    publish(kafka_settings, outcome("L1", Kind.STOPPED_LATE), outcome("L2", Kind.OPENED))
    eventually(lambda: stored(api, {"L1": 1, "L2": 1}))
    [clock] = api.get("/v1/cases/L1").json()["clocks"]
    assert (clock["status"], clock["decided_at"]) == ("breached", "2026-11-24T09:00:20Z")
    lines = api.get("/v1/report", params={"year": 2026}).json()["norms"]
    [line] = [x for x in lines if (x["municipality"], x["norm"]) == ("castricum", "phone.answer")]
    assert line["breached"] == 1


def test_the_catalogue_is_served(api: TestClient) -> None:
    norms = {n["id"]: n for n in api.get("/v1/norms").json()}
    assert len(norms) == 23
    answer = norms["phone.answer"]
    assert answer["seed"] == "We nemen binnen 20 seconden de telefoon op."
    assert (answer["starts"], answer["term"]) == (["call.queued"], {"elapsed": "PT20S"})
    assert norms["report.resolve"]["term"] == {"working_days": 10}


def test_breaches_page_by_cursor_and_filter_by_time(
    api: TestClient, kafka_settings: KafkaSettings
) -> None:
    publish(kafka_settings, *[outcome(f"P{n}", Kind.BREACHED, minute=n) for n in range(5)])
    eventually(lambda: len(breaches(api)) == 5)
    first = api.get("/v1/breaches", params={"limit": 2}).json()
    second = api.get("/v1/breaches", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get("/v1/breaches", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    pages = [[i["subject"] for i in page["items"]] for page in (first, second, third)]
    assert pages == [["P0", "P1"], ["P2", "P3"], ["P4"]]
    assert third["next_cursor"] is None
    since = (T0 + timedelta(minutes=1)).isoformat()
    until = (T0 + timedelta(minutes=3)).isoformat()
    assert breaches(api, since=since, until=until) == ["P1", "P2"]
    bad = api.get("/v1/breaches", params={"cursor": "%%%"})
    assert bad.status_code == 400
    assert api.get("/v1/breaches", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"municipality": "alkmaar"}, 422),  # not one of the four: not an empty page
        ({"norm": "phone.anwser"}, 422),  # misspelt
        ({"norm": ""}, 422),  # empty: no norm, not every norm
        ({"until": "9999-12-31T23:59:59-23:59"}, 422),  # no instant in UTC
        ({"since": "1700000000"}, 422),  # Unix seconds: not RFC 3339
        ({"cursor": base64.urlsafe_b64encode(b"9999-12-31T23:59:59-23:59|x").decode()}, 400),
        ({"cursor": base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x").decode()}, 400),  # naive
        ({"cursor": ""}, 422),  # not the first page: no cursor at all
        ((("limit", "1"), ("limit", "2")), 422),  # which one? not ours to guess
    ],
)
def test_breaches_refuse_filters_that_name_nothing(
    api: TestClient, params: dict[str, str] | tuple[tuple[str, str], ...], status: int
) -> None:
    response = api.get("/v1/breaches", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_an_unexpected_failure_is_answered_as_problem_details(
    kafka_settings: KafkaSettings, sqlite_url: str
) -> None:
    settings = ApiSettings(kafka=kafka_settings, database_url=sqlite_url,
                           consumer_group="api-test", environment="development")  # fmt: skip
    app = create_app(settings, consume=False)
    with TestClient(app, headers=DEVELOPMENT_READER, raise_server_exceptions=False) as client:
        with app.state.engine.begin() as connection:
            connection.execute(text("DROP TABLE clocks"))  # a database gone wrong
        response = client.get("/v1/cases/KCC-1")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("internal-error")


def test_health_says_when_outcomes_are_no_longer_stored(
    kafka_settings: KafkaSettings, sqlite_url: str
) -> None:
    """A read model that stopped moving must not look healthy."""
    nowhere = kafka_settings.model_copy(update={"bootstrap": "127.0.0.1:1"})
    app = create_app(ApiSettings(kafka=nowhere, database_url=sqlite_url))
    with TestClient(app) as client:
        eventually(lambda: client.get("/healthz").json()["status"] == "failed")
        health = client.get("/healthz")
        assert (health.status_code, health.json()["consuming"]) == (503, False)
    assert app.state.vital.failed
    assert "503" in app.openapi()["paths"]["/healthz"]["get"]["responses"]  # as documented


@pytest.mark.parametrize("path", ["/healthz", "/v1/norms", "/v1/cases/NOPE", "/nowhere"])
def test_head_answers_as_get_without_the_content(api: TestClient, path: str) -> None:
    eventually(lambda: api.get("/healthz").status_code == 200)  # the consumer runs
    got, head = api.get(path), api.head(path)
    assert head.status_code == got.status_code
    assert head.headers["content-type"] == got.headers["content-type"]
    # (That no content is sent is seen at the ASGI level, tests/unit/test_head.py: the
    # test client drops a HEAD response's content itself.) /healthz's own length may
    # change between the two: it counts the outcomes stored.
    if path != "/healthz":
        assert head.headers["content-length"] == got.headers["content-length"]


def test_stopping_while_the_consumer_starts_leaves_no_connection_open(
    kafka_settings: KafkaSettings, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka leaks its bootstrap connection when its start is cancelled midway."""
    engine = connect(sqlite_url)
    send, start = AIOKafkaConnection.send, AIOKafkaConsumer.start
    started: list[bool] = []

    async def stop_while_bootstrapping() -> None:
        asked = asyncio.Event()

        async def answer_later(response: Any) -> Any:
            await asyncio.sleep(0.3)
            return await response

        def slow_metadata(conn: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
            # The broker is real; its metadata answer is only held back long enough
            # to shut down in the middle of the consumer's bootstrap.
            if type(request).__name__.startswith("MetadataRequest") and not asked.is_set():
                asked.set()
                return answer_later(send(conn, request, *args, **kwargs))
            return send(conn, request, *args, **kwargs)

        async def start_and_note(self: AIOKafkaConsumer) -> None:
            await start(self)
            started.append(True)

        monkeypatch.setattr(AIOKafkaConnection, "send", slow_metadata)
        monkeypatch.setattr(AIOKafkaConsumer, "start", start_and_note)
        consumer = OutcomeConsumer(
            kafka_settings.bootstrap, kafka_settings.outcomes_topic, "quick", engine
        )
        task = asyncio.create_task(consumer.run())
        await asked.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    asyncio.run(stop_while_bootstrapping())
    gc.collect()
    engine.dispose()
    assert started == [True]  # the start was let finish (and stopped), not cut short
    assert unraisable == []


def test_the_year_report_counts_each_clock_once_as_it_stands(
    api: TestClient, kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    """Castricum's phone clocks: Y1 met; Y2 breached, then corrected to met; Y3 breached
    and stopped late; Y4 excluded; Y5 still running (at risk); Y7 queued in 2025 and met
    at the very start of 1 January 2026 (Dutch time), so running at 2025's end; Y6
    breached a second before that end, its late stop in 2026 changing nothing; Y9 queued
    in 2025 and running still, at the end of both years. Y8 is heiloo's."""
    new_year = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 2026-01-01T00:00+01:00
    norms = len(load_catalogue().norms)

    def at(subject: str, kind: Kind, deadline: datetime, decided: datetime | None) -> Outcome:
        return Outcome(subject=subject, norm="phone.answer", instance=1, kind=kind,
                       channel="phone", municipality="castricum",
                       started_at=deadline - timedelta(seconds=20), deadline=deadline,
                       decided_at=decided)  # fmt: skip

    before = new_year - timedelta(seconds=1)
    publish(
        kafka_settings,
        outcome("Y1", Kind.OPENED),
        outcome("Y1", Kind.MET),
        outcome("Y2", Kind.BREACHED),
        outcome("Y2", Kind.MET, corrects=Kind.BREACHED),
        outcome("Y3", Kind.BREACHED),
        outcome("Y3", Kind.STOPPED_LATE),
        outcome("Y4", Kind.EXCLUDED),
        outcome("Y5", Kind.OPENED),
        outcome("Y5", Kind.AT_RISK),
        at("Y6", Kind.BREACHED, before, before),
        at("Y6", Kind.STOPPED_LATE, before, new_year + timedelta(hours=1)),
        at("Y7", Kind.MET, new_year, new_year),
        at("Y9", Kind.OPENED, before, None),
        outcome("Y8", Kind.BREACHED, municipality="heiloo"),
    )
    eventually(lambda: stored(api, {"Y1": 2, "Y2": 2, "Y3": 2, "Y4": 1, "Y5": 2, "Y6": 2,
                                    "Y7": 1, "Y8": 1, "Y9": 1}))  # fmt: skip

    def report(year: int) -> dict[tuple[str, str], dict[str, Any]]:
        response = api.get("/v1/report", params={"year": year})
        assert response.status_code == 200, response.text
        lines = {(x["municipality"], x["norm"]): x for x in response.json()["norms"]}
        assert len(lines) == 4 * norms
        return lines

    figures = ("met", "breached", "excluded", "cancelled", "open")
    castricum = report(2026)["castricum", "phone.answer"]
    assert [castricum[k] for k in figures] == [3, 1, 1, 0, 2]  # open: Y5, Y9
    assert (castricum["service_level"], castricum["objective"]) == (0.75, 0.9)
    assert (castricum["unit"], castricum["objective_met"]) == ("clock", False)
    assert [report(2025)["castricum", "phone.answer"][k] for k in figures] == [0, 1, 0, 0, 2]
    assert report(2026)["heiloo", "phone.answer"]["service_level"] == 0.0
    assert report(2026)["bergen", "phone.answer"]["service_level"] is None
    assert report(2026)["castricum", "email.answer"]["met"] == 0
    assert report(2026)["castricum", "website.availability"]["unit"] == "month"

    heiloo = api.get("/v1/report", params={"year": 2026, "municipality": "heiloo"}).json()
    assert {x["municipality"] for x in heiloo["norms"]} == {"heiloo"}
    assert (heiloo["since"], heiloo["until"]) == ("2025-12-31T23:00:00Z", "2026-12-31T23:00:00Z")
    past = api.get("/v1/report", params={"year": 2025}).json()
    assert (past["complete"], past["generated_at"] > past["until"]) == (True, True)
    this_year = datetime.now(AMSTERDAM).year
    under_way = api.get("/v1/report", params={"year": this_year}).json()
    assert under_way["complete"] is False
    # A year not begun counts nothing yet: not even the clocks running now as its backlog.
    assert sum(line["open"] for line in under_way["norms"]) > 0
    later = api.get("/v1/report", params={"year": this_year + 1}).json()
    assert later["complete"] is False
    assert {line[k] for line in later["norms"] for k in ("met", "breached", "open")} == {0}
    wrongs: list[dict[str, str | int]] = [
        {}, {"year": 1969}, {"year": 2101}, {"year": "MMXXVI"},
        {"year": 2026, "format": "xlsx"}, {"year": 2026, "municipality": "alkmaar"},
    ]  # fmt: skip
    for wrong in wrongs:
        refused = api.get("/v1/report", params=wrong)
        assert refused.status_code == 422, wrong
        assert refused.headers["content-type"] == "application/problem+json"

    spreadsheet = api.get("/v1/report", params={"year": 2026, "format": "csv"})
    assert spreadsheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(spreadsheet.text)))
    assert len(rows) == 4 * norms
    [row] = [r for r in rows if (r["municipality"], r["norm"]) == ("castricum", "phone.answer")]
    assert [row[k] for k in ("year", *figures, "service_level", "objective_met")] == [
        "2026", "3", "1", "1", "0", "2", "0.75", "False",
    ]  # fmt: skip

    def file_name(**params: str | int) -> str:
        response = api.get("/v1/report", params={"format": "csv", **params})
        return response.headers["content-disposition"].removeprefix("attachment; filename=")

    assert file_name(year=2025) == '"normwacht-2025.csv"'
    assert file_name(year=2025, municipality="heiloo") == '"normwacht-2025-heiloo.csv"'
    assert file_name(year=this_year).startswith(f'"normwacht-{this_year}-as-of-20')  # not over

    # The command line reads the same database and writes the same file ...
    command = CliRunner().invoke(cli, ["report", "2026", "--csv", "--database-url", database_url])
    assert command.exit_code == 0, command.output
    assert command.stdout.splitlines() == spreadsheet.text.splitlines()
    # ... and never takes a database that is not there for a year without clocks.
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    command = CliRunner().invoke(cli, ["report", "2026", "--database-url", missing])
    assert command.exit_code == 1
    assert "no database at" in command.output
    assert not (tmp_path / "typo.db").exists()
