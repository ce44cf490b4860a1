"""Integration partners: who may write events or read the API, for which scopes, with which key.

A partner has a unique name, a role (`write`: post events to ingest; `read`: read the API),
scopes (source URIs, event types, municipalities; each exact, a prefix ending in `*`, or `*`
for all, always written out) and a rate limit. Its key, `nwk_<key id>_<secret>`, is shown
once and stored only as a SHA-256 hash of the secret. The registry lives in the services'
database (the API's by default); ingest and the API read it through `PartnerCache`, so a
revocation takes effect within the cache's refresh interval.

The audit table holds one row per accepted request: the partner, how many events, their
distinct sources and when. Never event contents or subjects.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, Engine, ForeignKey, Index, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from normwacht.core.events import EVENT_TYPES, Municipality
from services.shared.db import Schema, UTCDateTime
from services.shared.db import connect as shared_connect
from services.shared.db import migrate as shared_migrate
from services.shared.problems import Problem

DEVELOPMENT_TOKEN = "normwacht-dev-token"  # noqa: S105 - public on purpose: the README names it
"""Accepted only by a service in development mode, as a partner with every scope."""

KEY_PREFIX = "nwk_"
ALL = "*"
_KEY = re.compile(r"^nwk_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})$")
_SOURCE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")


class Role(StrEnum):
    WRITE = "write"
    READ = "read"


class ScopeError(ValueError):
    """A scope, name or rate that cannot be registered."""


class PartnerExists(ValueError):
    pass


class UnknownPartner(LookupError):
    pass


# --- the pure part: scopes, keys ---------------------------------------------------------


def _matches(patterns: Iterable[str], value: str) -> bool:
    # `*` alone is the empty prefix: everything.
    return any(p == value or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns)


@dataclass(frozen=True)
class Scope:
    """What a partner may touch. Patterns are exact, `prefix*`, or `*` (everything)."""

    sources: tuple[str, ...]
    types: tuple[str, ...]
    municipalities: tuple[str, ...]

    def refusal(self, source: str, type_: str, municipality: str) -> str | None:
        """The first attribute of an event outside this scope, or None when it is inside."""
        if not _matches(self.sources, source):
            return "source"
        if not _matches(self.types, type_):
            return "type"
        if not self.allows_municipality(municipality):
            return "municipality"
        return None

    def allows_municipality(self, municipality: str) -> bool:
        return ALL in self.municipalities or municipality in self.municipalities

    @property
    def all_municipalities(self) -> bool:
        return ALL in self.municipalities


EVERYTHING = Scope((ALL,), (ALL,), (ALL,))


def _prefix_or_exact(pattern: str) -> tuple[str, bool]:
    if "*" in pattern[:-1]:
        raise ScopeError(f"{pattern!r}: `*` may only end a pattern")
    return (pattern[:-1], True) if pattern.endswith("*") else (pattern, False)


def check_sources(patterns: Iterable[str]) -> tuple[str, ...]:
    checked = []
    for pattern in patterns:
        if pattern != ALL:
            stem, prefix = _prefix_or_exact(pattern)
            # A prefix must at least name a scheme, so `*`-less typos cannot widen it to all.
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", stem) or (
                not prefix and not _SOURCE.match(stem)
            ):
                raise ScopeError(
                    f"source {pattern!r}: an absolute URI such as urn:buch:kcc:telephony, "
                    "a prefix such as urn:buch:kcc:*, or * for every source"
                )
        checked.append(pattern)
    return _nonempty("source", checked)


def check_types(patterns: Iterable[str]) -> tuple[str, ...]:
    checked = []
    for pattern in patterns:
        if pattern != ALL:
            stem, prefix = _prefix_or_exact(pattern)
            known = [t for t in EVENT_TYPES if t.startswith(stem)] if prefix else [stem]
            if not known or not all(t in EVENT_TYPES for t in known):
                raise ScopeError(
                    f"type {pattern!r}: no such event type; use one such as "
                    "nl.buch.call.queued, a prefix such as nl.buch.call.*, or * for every type"
                )
        checked.append(pattern)
    return _nonempty("type", checked)


def check_municipalities(values: Iterable[str]) -> tuple[str, ...]:
    known = {m.value for m in Municipality}
    checked = []
    for value in values:
        if value != ALL and value not in known:
            raise ScopeError(
                f"municipality {value!r}: one of {', '.join(sorted(known))}, or * for all"
            )
        checked.append(value)
    return _nonempty("municipality", checked)


def _nonempty(what: str, values: list[str]) -> tuple[str, ...]:
    if not values:
        raise ScopeError(f"at least one {what} is needed (write * for all, explicitly)")
    return tuple(dict.fromkeys(values))


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ScopeError(
            f"name {name!r}: lower-case letters, digits and . _ - only, at most 64 characters"
        )
    return name


def new_key() -> tuple[str, str, str]:
    """A fresh key: (the key to hand out, its key id, the hash to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}{key_id}_{secret}", key_id, hash_secret(secret)


def parse_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key; None for anything else."""
    match = _KEY.match(key)
    return (match[1], match[2]) if match else None


def hash_secret(secret: str) -> str:
    # A fast hash is right here, unlike for passwords: the secret is 256 random bits, so
    # no guessing attack can use the speed, and every request is checked cheaply. Slow,
    # salted hashes (bcrypt, argon2) protect low-entropy secrets people choose.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


# --- partners as the services see them --------------------------------------------------


@dataclass(frozen=True)
class Partner:
    name: str
    role: Role
    scope: Scope
    rate: float | None
    """Requests per second, or None for no limit (the development partner)."""
    burst: int


DEVELOPMENT_PARTNER = Partner("development", Role.WRITE, EVERYTHING, None, 0)


@dataclass(frozen=True)
class _Key:
    partner: Partner
    secret_hash: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """The active partners' keys by key id, as read at one moment."""

    keys: Mapping[str, _Key] = field(default_factory=dict)

    def partner(self, key: str, now: datetime) -> Partner | None:
        """The partner whose current key `key` is, or None."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        found = self.keys.get(parsed[0])
        if found is None:
            return None
        if not hmac.compare_digest(found.secret_hash, hash_secret(parsed[1])):
            return None
        if found.expires_at is not None and found.expires_at <= now:
            return None
        return found.partner

    def has_active(self, role: Role) -> bool:
        return any(k.partner.role is role for k in self.keys.values())

    def named(self, name: str) -> Partner | None:
        """The active partner called `name` (one with a current key), or None."""
        return next((k.partner for k in self.keys.values() if k.partner.name == name), None)


# --- the database -----------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class PartnerRow(Base):
    __tablename__ = "partners"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    sources: Mapped[list[str]] = mapped_column(JSON)
    types: Mapped[list[str]] = mapped_column(JSON)
    municipalities: Mapped[list[str]] = mapped_column(JSON)
    rate: Mapped[float]
    burst: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def partner(self) -> Partner:
        scope = Scope(tuple(self.sources), tuple(self.types), tuple(self.municipalities))
        return Partner(self.name, Role(self.role), scope, self.rate, self.burst)


class KeyRow(Base):
    __tablename__ = "partner_keys"
    __table_args__ = (Index("ix_partner_keys_partner", "partner"),)

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    partner: Mapped[str] = mapped_column(ForeignKey("partners.name"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """None while the key is current; set when a rotation retires it (now, or after grace)."""


class AuditRow(Base):
    __tablename__ = "partner_audit"
    __table_args__ = (Index("ix_partner_audit_partner_at", "partner", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int]
    sources: Mapped[list[str]] = mapped_column(JSON)


@dataclass(frozen=True)
class Audit:
    """One accepted request: no contents, no subjects."""

    partner: str
    at: datetime
    count: int
    sources: tuple[str, ...]


SCHEMA = Schema(
    "partners",
    Base.metadata,
    "partners_0001",
    frozenset({"partners", "partner_keys", "partner_audit"}),
)


def connect(url: str) -> Engine:
    """An engine with the partner tables in place (beside whatever else the database holds)."""
    return shared_connect(url, SCHEMA)


def migrate(engine: Engine) -> None:
    """The partner tables made or brought up to date in a database a service has
    connected to already."""
    shared_migrate(engine, SCHEMA)


def _now() -> datetime:
    return datetime.now(UTC)


class Registry:
    """Partners, keys and audit rows in the database."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self._clock = clock

    def add(
        self,
        name: str,
        role: Role,
        *,
        sources: Iterable[str] = (),
        types: Iterable[str] = (),
        municipalities: Iterable[str],
        rate: float,
        burst: int,
    ) -> str:
        """Register a partner; returns its key (the only time it is seen)."""
        check_name(name)
        if role is Role.WRITE:
            sources, types = check_sources(sources), check_types(types)
        elif tuple(sources) or tuple(types):
            raise ScopeError("sources and types scope write partners; a reader has neither")
        if not (rate > 0 and burst >= 1):
            raise ScopeError("the rate must be above 0 and the burst at least 1")
        now = self._clock()
        key, key_id, secret_hash = new_key()
        with Session(self.engine) as session:
            if session.get(PartnerRow, name) is not None:
                raise PartnerExists(f"a partner named {name!r} exists already (names stay taken)")
            session.add(
                PartnerRow(
                    name=name,
                    role=role.value,
                    sources=list(sources),
                    types=list(types),
                    municipalities=list(check_municipalities(municipalities)),
                    rate=rate,
                    burst=burst,
                    created_at=now,
                )
            )
            try:
                session.flush()  # the partner's row first: its key refers to it
            except IntegrityError:  # added at the same moment by someone else
                raise PartnerExists(f"a partner named {name!r} exists already") from None
            session.add(
                KeyRow(key_id=key_id, partner=name, secret_hash=secret_hash, created_at=now)
            )
            session.commit()
        return key

    def rotate(self, name: str, keep_old_for: timedelta | None = None) -> str:
        """A new key for `name`; its current keys stop working now, or after `keep_old_for`."""
        now = self._clock()
        retire_at = now + keep_old_for if keep_old_for else now
        key, key_id, secret_hash = new_key()
        with Session(self.engine) as session:
            row = self._active(session, name)
            for old in session.scalars(select(KeyRow).where(KeyRow.partner == name)):
                if old.expires_at is None or old.expires_at > retire_at:
                    old.expires_at = retire_at
            session.add(
                KeyRow(key_id=key_id, partner=name, secret_hash=secret_hash, created_at=now)
            )
            row.rotated_at = now
            session.commit()
        return key

    def revoke(self, name: str) -> None:
        with Session(self.engine) as session:
            self._active(session, name).revoked_at = self._clock()
            session.commit()

    def partners(self) -> list[PartnerRow]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(PartnerRow).order_by(PartnerRow.name)))

    def active_keys(self) -> dict[str, int]:
        """How many usable keys each partner has (a rotated key in its grace counts)."""
        now = self._clock()
        counts: dict[str, int] = {}
        with Session(self.engine) as session:
            for key in session.scalars(select(KeyRow)):
                if key.expires_at is None or key.expires_at > now:
                    counts[key.partner] = counts.get(key.partner, 0) + 1
        return counts

    def snapshot(self) -> Snapshot:
        """Every usable key of every partner not revoked."""
        now = self._clock()
        with Session(self.engine) as session:
            rows = session.execute(
                select(KeyRow, PartnerRow)
                .join(PartnerRow, PartnerRow.name == KeyRow.partner)
                .where(PartnerRow.revoked_at.is_(None))
            ).all()
            keys = {
                key.key_id: _Key(partner.partner(), key.secret_hash, key.expires_at)
                for key, partner in rows
                if key.expires_at is None or key.expires_at > now
            }
        return Snapshot(keys)

    def audit(self, records: Sequence[Audit]) -> None:
        """Write audit rows, all in one transaction."""
        with Session(self.engine) as session:
            session.add_all(
                AuditRow(partner=r.partner, at=r.at, count=r.count, sources=list(r.sources))
                for r in records
            )
            session.commit()

    def audits(self, partner: str | None = None) -> list[Audit]:
        query = select(AuditRow).order_by(AuditRow.id)
        if partner is not None:
            query = query.where(AuditRow.partner == partner)
        with Session(self.engine) as session:
            return [
                Audit(r.partner, r.at, r.count, tuple(r.sources)) for r in session.scalars(query)
            ]

    @staticmethod
    def _active(session: Session, name: str) -> PartnerRow:
        row = session.get(PartnerRow, name)
        if row is None:
            raise UnknownPartner(f"no partner named {name!r}")
        if row.revoked_at is not None:
            raise UnknownPartner(f"partner {name!r} was revoked at {row.revoked_at.isoformat()}")
        return row


class _Source(Protocol):
    def snapshot(self) -> Snapshot: ...


class PartnerCache:
    """The registry's snapshot, read again once it is `refresh_s` old (0: on every use).

    Thread-safe, so the API's sync endpoints (run in a thread pool) may share it.
    """

    def __init__(
        self,
        registry: _Source,
        refresh_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0

    def stale(self) -> bool:
        return self._snapshot is None or self._monotonic() - self._read_at >= self._refresh_s

    def last(self) -> Snapshot | None:
        """The snapshot as last read, without reading (never blocks on the database)."""
        return self._snapshot

    def current(self) -> Snapshot:
        """The snapshot, read from the database first when stale (this may block)."""
        with self._lock:
            if self._snapshot is None or self.stale():
                self._snapshot = self._registry.snapshot()
                self._read_at = self._monotonic()
            return self._snapshot


_CHALLENGE = 'Bearer realm="normwacht"'


def unauthorized(detail: str, *, presented: bool) -> Problem:
    """401 with the RFC 6750 challenge (`invalid_token` when a credential was presented)."""
    challenge = _CHALLENGE + (', error="invalid_token"' if presented else "")
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": challenge}
    )


def authenticate(
    authorization: str | None, snapshot: Snapshot, now: datetime, *, development: bool
) -> Partner:
    """The partner an `Authorization` header names; a 401 problem for anything else.

    Never raises anything but `Problem`: a header of any shape (another scheme, non-ASCII,
    garbage) is a credential that does not work, not a server error.
    """
    if not authorization:
        raise unauthorized(
            "a bearer key is required: Authorization: Bearer nwk_...", presented=False
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("use the bearer scheme: Authorization: Bearer nwk_...", presented=True)
    if not token.isascii() or not token.isprintable():
        raise unauthorized("the bearer key is malformed (not printable ASCII)", presented=True)
    if development and hmac.compare_digest(token.encode(), DEVELOPMENT_TOKEN.encode()):
        return DEVELOPMENT_PARTNER
    partner = snapshot.partner(token, now)
    if partner is None:
        raise unauthorized(
            "the bearer key is unknown, malformed, revoked or expired", presented=True
        )
    return partner


def audit_fields(record: Audit) -> dict[str, Any]:
    """An audit record as log fields."""
    return {
        "partner": record.partner,
        "count": record.count,
        "sources": list(record.sources),
        "at": record.at.isoformat(),
    }
