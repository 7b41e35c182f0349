"""API keys, token buckets and the per-address lockout, on their own."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from services.apikeys import (
    AddressLockout,
    ApiKeyStore,
    Failure,
    KeyRateLimiter,
    KeyState,
    Scope,
    parse_duration,
    parse_scopes,
    parse_token,
    retry_after_header,
)
from services.apikeys.store import UnknownKeyError


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def make_store(clock: Clock, conn: sqlite3.Connection | None = None) -> ApiKeyStore:
    conn = conn or sqlite3.connect(":memory:")
    return ApiKeyStore(conn, clock=clock, cache_seconds=1.0, monotonic=clock.monotonic)


def test_token_is_printed_once_and_only_a_hash_is_stored() -> None:
    conn = sqlite3.connect(":memory:")
    store = make_store(Clock(), conn)
    issued = store.create("prometheus", [Scope.READ], timedelta(days=30))
    token = str(issued.token)
    assert token.startswith(f"dk_{issued.key.key_id}_")
    assert len(issued.token.secret) == 43  # 256 bits, base64url
    dump = "\n".join(conn.iterdump())
    assert issued.token.secret not in dump
    assert "secret=<hidden>" in repr(issued.token)
    assert store.verify(token).key == issued.key
    other = store.create("second", [Scope.READ])
    assert other.token.secret != issued.token.secret


def test_verify_names_each_failure() -> None:
    clock = Clock()
    store = make_store(clock)
    issued = store.create("bot", [Scope.READ, Scope.TRADE], timedelta(hours=1))
    token = str(issued.token)
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert store.verify(None).failure is Failure.MISSING
    assert store.verify("hunter2").failure is Failure.MALFORMED
    assert store.verify("dk_000000000000_" + "A" * 43).failure is Failure.UNKNOWN
    verdict = store.verify(wrong)
    assert verdict.failure is Failure.WRONG_SECRET and verdict.key_id == issued.key.key_id
    clock.now += timedelta(hours=1)
    assert store.verify(token).failure is Failure.EXPIRED
    assert store.get(issued.key.key_id).state(clock.now) is KeyState.EXPIRED  # type: ignore[union-attr]


def test_revocation_takes_effect_once_the_cache_expires_even_from_another_connection(
    tmp_path: object,
) -> None:
    clock = Clock()
    path = f"{tmp_path}/keys.db"
    server = make_store(clock, sqlite3.connect(path))
    issued = server.create("bot", [Scope.TRADE])
    token = str(issued.token)
    assert server.verify(token).ok
    cli = ApiKeyStore(sqlite3.connect(path), clock=clock)  # `dalal apikey revoke` elsewhere
    revoked = cli.revoke(issued.key.key_id)
    assert revoked.revoked_at == clock.now
    assert cli.revoke(issued.key.key_id).revoked_at == clock.now  # idempotent
    clock.mono += 1.5
    assert server.verify(token).failure is Failure.REVOKED
    with pytest.raises(UnknownKeyError):
        cli.revoke("ffffffffffff")


def test_last_use_is_kept_in_memory_then_flushed() -> None:
    clock = Clock()
    conn = sqlite3.connect(":memory:")
    store = make_store(clock, conn)
    issued = store.create("bot", [Scope.READ])
    clock.now += timedelta(minutes=5)
    assert store.verify(str(issued.token)).ok
    assert store.list()[0].last_used_at == clock.now  # visible before the flush
    stored = conn.execute("SELECT last_used_at FROM api_keys").fetchone()[0]
    assert stored is None
    assert store.flush_last_used() == 1
    stored = conn.execute("SELECT last_used_at FROM api_keys").fetchone()[0]
    assert datetime.fromisoformat(stored) == clock.now
    assert store.flush_last_used() == 0


def test_create_refuses_bad_input() -> None:
    store = make_store(Clock())
    with pytest.raises(ValueError):
        store.create("", [Scope.READ])
    with pytest.raises(ValueError):
        store.create("x", [])
    with pytest.raises(ValueError):
        store.create("x", [Scope.READ], timedelta(0))


def test_scopes_and_durations_parse_strictly() -> None:
    assert parse_scopes("read, trade") == {Scope.READ, Scope.TRADE}
    for bad in ("", "read,admin", " , "):
        with pytest.raises(ValueError):
            parse_scopes(bad)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("30", "d", "-1d", "0h", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_token("dk_abc_def") is None


def test_token_bucket_allows_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(rate=2.0, burst=3, monotonic=clock.monotonic)
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("a")
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert limiter.check("b") == 0.0  # buckets are per key
    clock.mono += 0.5
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0


def test_ten_failures_in_fifteen_minutes_block_for_growing_periods() -> None:
    clock = Clock()
    lockout = AddressLockout(monotonic=clock.monotonic)
    for i in range(9):
        assert lockout.failure("10.0.0.9").blocked_for == 0, i
        clock.mono += 60
    assert lockout.retry_after("10.0.0.9") == 0
    first = lockout.failure("10.0.0.9")
    assert (first.failures, first.blocked_for) == (10, 60)
    assert lockout.retry_after("10.0.0.9") == 60
    assert lockout.blocked_count() == 1
    assert lockout.retry_after("10.0.0.8") == 0
    clock.mono += 61
    assert lockout.blocked_count() == 0
    for _ in range(10):
        outcome = lockout.failure("10.0.0.9")
    assert outcome.blocked_for == 120  # second block is twice as long


def test_failures_spread_over_more_than_the_window_do_not_block() -> None:
    clock = Clock()
    lockout = AddressLockout(monotonic=clock.monotonic)
    for _ in range(30):
        assert lockout.failure("a").blocked_for == 0
        clock.mono += 101  # at most 9 failures in any 15 minutes
    lockout.success("a")
    assert lockout.failure("a").failures == 1
