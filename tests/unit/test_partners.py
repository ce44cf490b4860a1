"""The pure parts of partner access: scopes, keys, the token bucket, the Authorization header,
the audit trail's batching (over an in-memory registry)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from normwacht.core.events import Event, parse_event
from normwacht.partners_cli import parse_duration
from services.ingest.access import AuditTrail, out_of_scope
from services.shared.bindings import Mode
from services.shared.partners import (
    DEVELOPMENT_PARTNER,
    DEVELOPMENT_TOKEN,
    Audit,
    Partner,
    Role,
    Scope,
    ScopeError,
    Snapshot,
    _Key,
    authenticate,
    check_municipalities,
    check_name,
    check_sources,
    check_types,
    hash_secret,
    new_key,
    parse_key,
)
from services.shared.problems import Problem
from services.shared.rates import RateLimiter, TokenBucket

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KCC = Scope(("urn:buch:kcc:*", "urn:buch:mail"), ("nl.buch.call.*",), ("heiloo", "bergen"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scope_matches_exact_values_prefixes_and_everything() -> None:
    assert KCC.refusal("urn:buch:kcc:telephony", "nl.buch.call.queued", "heiloo") is None
    assert KCC.refusal("urn:buch:mail", "nl.buch.call.answered", "bergen") is None
    assert KCC.refusal("urn:buch:mailbox", "nl.buch.call.queued", "heiloo") == "source"
    assert KCC.refusal("urn:buch:kc", "nl.buch.call.queued", "heiloo") == "source"
    assert KCC.refusal("urn:buch:kcc:x", "nl.buch.callback.made", "heiloo") == "type"
    assert KCC.refusal("urn:buch:kcc:x", "nl.buch.call.queued", "castricum") == "municipality"
    everything = Scope(("*",), ("*",), ("*",))
    assert everything.refusal("urn:anything", "nl.buch.case.paused", "uitgeest") is None
    assert everything.all_municipalities
    assert not KCC.all_municipalities


def test_scope_patterns_are_checked_when_registered() -> None:
    assert check_sources(["urn:buch:kcc:*", "*", "https://x.example/y"]) == (
        "urn:buch:kcc:*",
        "*",
        "https://x.example/y",
    )
    assert check_types(["nl.buch.call.*", "nl.buch.report.received"]) == (
        "nl.buch.call.*",
        "nl.buch.report.received",
    )
    assert check_municipalities(["heiloo", "heiloo", "*"]) == ("heiloo", "*")
    for bad_source in (["kcc"], ["urn:*:x"], ["no spaces: here"], []):
        with pytest.raises(ScopeError):
            check_sources(bad_source)
    for bad_type in (["nl.buch.cal.*"], ["nl.buch.call.teleported"], ["x*"], []):
        with pytest.raises(ScopeError):
            check_types(bad_type)
    for bad_municipality in (["alkmaar"], ["Heiloo"], []):
        with pytest.raises(ScopeError):
            check_municipalities(bad_municipality)
    with pytest.raises(ScopeError):
        check_name("Has Spaces")


def test_a_key_is_parsed_only_in_its_exact_shape_and_stored_as_its_secrets_hash() -> None:
    key, key_id, stored = new_key()
    parsed = parse_key(key)
    assert parsed is not None
    assert parsed[0] == key_id
    assert hash_secret(parsed[1]) == stored
    assert stored not in key
    assert len(stored) == 64
    assert new_key()[0] != key
    for bad in ("", key + "x", key[:-1], key.replace("nwk_", "nwx_"), "nwk__" + key[21:],
                key.upper(), DEVELOPMENT_TOKEN, key[:-1] + "é"):  # fmt: skip
        assert parse_key(bad) is None, bad


def snapshot_with(partner: Partner, expires_at: datetime | None = None) -> tuple[Snapshot, str]:
    key, key_id, stored = new_key()
    return Snapshot({key_id: _Key(partner, stored, expires_at)}), key


WRITER = Partner("kcc", Role.WRITE, KCC, 2.0, 3)


def test_authenticate_finds_the_partner_of_a_current_key() -> None:
    snapshot, key = snapshot_with(WRITER)
    assert authenticate(f"Bearer {key}", snapshot, NOW, development=False) is WRITER
    assert authenticate(f"bearer {key}", snapshot, NOW, development=False) is WRITER
    graced, old = snapshot_with(WRITER, expires_at=NOW + timedelta(minutes=5))
    assert authenticate(f"Bearer {old}", graced, NOW, development=False) is WRITER
    with pytest.raises(Problem):
        authenticate(f"Bearer {old}", graced, NOW + timedelta(minutes=5), development=False)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer nwk_garbage",
        "Bearer tökén",
        "Bearer \x7f\x01",
        f"Bearer {DEVELOPMENT_TOKEN}",  # production: the development token is just unknown
    ],
)
def test_any_other_header_is_a_401_problem_with_a_challenge(header: str | None) -> None:
    snapshot, _ = snapshot_with(WRITER)
    with pytest.raises(Problem) as refused:
        authenticate(header, snapshot, NOW, development=False)
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="normwacht"')


def test_a_wrong_secret_for_a_known_key_id_is_refused() -> None:
    snapshot, key = snapshot_with(WRITER)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(Problem):
        authenticate(f"Bearer {forged}", snapshot, NOW, development=False)


def test_the_development_token_works_only_in_development() -> None:
    empty = Snapshot()
    found = authenticate(f"Bearer {DEVELOPMENT_TOKEN}", empty, NOW, development=True)
    assert found is DEVELOPMENT_PARTNER
    with pytest.raises(Problem):
        authenticate(f"Bearer {DEVELOPMENT_TOKEN}", empty, NOW, development=False)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 60  # refills only up to the burst
    assert [bucket.take() for _ in range(4)][-1] > 0


def test_the_rate_limiter_answers_429_with_a_whole_retry_after_of_at_least_one() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    slow = Partner("slow", Role.WRITE, KCC, 0.1, 1)
    limiter.check(slow)
    with pytest.raises(Problem) as limited:
        limiter.check(slow)
    assert limited.value.status == 429
    assert limited.value.headers == {"Retry-After": "10"}
    fast = Partner("fast", Role.WRITE, KCC, 10.0, 1)
    limiter.check(fast)
    with pytest.raises(Problem) as limited:
        limiter.check(fast)
    assert limited.value.headers == {"Retry-After": "1"}  # 0.1 s, rounded up to 1
    limiter.check(DEVELOPMENT_PARTNER)  # no limit
    for _ in range(1000):
        limiter.check(DEVELOPMENT_PARTNER)


def event(municipality: str) -> Event:
    return parse_event(
        b'{"specversion": "1.0", "id": "e-1", "source": "urn:buch:kcc:t", '
        b'"type": "nl.buch.call.queued", "time": "2026-11-24T09:00:00+01:00", '
        b'"subject": "KCC-1", "municipality": "' + municipality.encode() + b'"}'
    )


def test_out_of_scope_names_the_attribute_and_points_at_the_event() -> None:
    inside, outside = event("heiloo"), event("castricum")
    assert out_of_scope([inside], WRITER, Mode.STRUCTURED) is None
    refused = out_of_scope([inside, outside], WRITER, Mode.BATCH)
    assert refused is not None
    assert (refused.status, refused.extensions) == (
        403,
        {"attribute": "municipality", "pointer": "/1/municipality"},
    )
    assert "castricum" in refused.detail
    single = out_of_scope([outside], WRITER, Mode.STRUCTURED)
    assert single is not None
    assert single.extensions["pointer"] == "/municipality"
    binary = out_of_scope([outside], WRITER, Mode.BINARY)
    assert binary is not None
    assert binary.extensions["pointer"] == "/headers/ce-municipality"


def test_durations_for_a_rotation_grace() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("7d") == timedelta(days=7)
    for bad in ("", "0s", "1x", "h", "-1h"):
        with pytest.raises(Exception, match="duration"):
            parse_duration(bad)


class _Rows:
    """A registry that keeps audit rows in memory, or fails while `down`."""

    def __init__(self) -> None:
        self.batches: list[list[Audit]] = []
        self.down = False

    def audit(self, records: Sequence[Audit]) -> None:
        if self.down:
            raise OSError("database away")
        self.batches.append(list(records))


def _audit(n: int) -> Audit:
    return Audit("kcc", datetime(2026, 12, 3, tzinfo=UTC), n, ("urn:buch:kcc:telephony",))


def test_audit_rows_are_written_in_one_batch_and_kept_while_the_database_is_away() -> None:
    rows, lost = _Rows(), list[int]()
    trail = AuditTrail(rows, every_s=1.0, on_lost=lost.append, max_pending=3)  # type: ignore[arg-type]
    trail.add(_audit(1))
    trail.add(_audit(2))
    asyncio.run(trail.flush())
    assert [[a.count for a in batch] for batch in rows.batches] == [[1, 2]]

    rows.down = True
    for n in (3, 4):
        trail.add(_audit(n))
    asyncio.run(trail.flush())  # fails: kept for the next one
    for n in (5, 6):
        trail.add(_audit(n))
    assert lost == [1]  # past max_pending the oldest is given up (it is in the log)
    rows.down = False
    asyncio.run(trail.flush())
    assert [[a.count for a in batch] for batch in rows.batches] == [[1, 2], [4, 5, 6]]
    assert trail.pending == []
