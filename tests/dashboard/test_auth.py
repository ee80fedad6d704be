"""Passwords, users, the login limiter and redirect targets (database parts on both databases)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from dashboard.auth import (
    AuthError,
    LoginLimiter,
    authenticate,
    create_user,
    find_user,
    hash_password,
    password_problem,
    safe_next,
    verify_password,
)
from dashboard.store import open_store, schema

GOOD = "correct horse battery"


def test_password_hash_is_salted_and_verifies_only_the_password() -> None:
    first, second = hash_password(GOOD), hash_password(GOOD)
    assert first != second
    assert first.startswith("scrypt$32768$8$1$")
    assert GOOD not in first
    assert verify_password(GOOD, first)
    assert verify_password(GOOD, second)
    assert not verify_password(GOOD + " ", first)
    assert not verify_password("", first)


def test_verify_reads_the_parameters_stored_with_the_hash() -> None:
    kind, _n, r, p, salt, digest = hash_password(GOOD).split("$")
    assert not verify_password(GOOD, "$".join([kind, "16384", r, p, salt, digest]))
    for broken in (
        "",
        "plain",
        "scrypt$x$8$1$a$b",
        "bcrypt$2$8$1$AAAA$AAAA",
        "scrypt$3$8$1$AAAA$AAAA",
        "scrypt$16$8$1$$",
    ):
        assert not verify_password(GOOD, broken)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "empty"),
        ("          ", "empty"),
        ("short1!", "shorter than 10"),
        ("my-name-is-ann-and-more", "contains the user name"),
        ("aaaaaaaaaaaaab", "too few different"),
    ],
)
def test_weak_passwords_are_refused(password: str, problem: str) -> None:
    assert problem in (password_problem(password, "ann") or "")


def test_a_long_varied_password_is_accepted() -> None:
    assert password_problem(GOOD, "ann") is None


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/teams/a?days=7", "/teams/a?days=7"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/a\\b", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("relative/path", "/"),
    ],
)
def test_next_target_stays_on_this_site(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_limiter_blocks_a_user_and_address_after_the_limit_for_one_minute(
    database_url: str,
) -> None:
    clock = FakeClock()
    store = open_store(database_url)
    limiter = LoginLimiter(store.engine, 3, clock)
    for _ in range(3):
        assert not limiter.blocked("Ann", "10.0.0.1")
        limiter.failed("Ann", "10.0.0.1")
        clock.advance(1)
    assert limiter.blocked("ann", "10.0.0.1")
    assert not limiter.blocked("ann", "10.0.0.2")
    assert not limiter.blocked("bob", "10.0.0.1")
    clock.advance(57.5)
    assert not limiter.blocked("ann", "10.0.0.1"), "the first failure left the minute"
    limiter.failed("ann", "10.0.0.1")
    assert limiter.blocked("ann", "10.0.0.1")
    store.close()


def test_limiter_is_shared_by_processes_on_one_database_and_keeps_no_names(
    database_url: str,
) -> None:
    """Two web workers count one user's failures together; what typed a password into the
    name field is not stored, and failures past the minute are swept."""
    clock = FakeClock()
    first, second = open_store(database_url), open_store(database_url)
    a, b = LoginLimiter(first.engine, 2, clock), LoginLimiter(second.engine, 2, clock)
    a.failed("ann", "10.0.0.1")
    assert not b.blocked("ann", "10.0.0.1")
    b.failed("ann", "10.0.0.1")
    assert a.blocked("ann", "10.0.0.1") and b.blocked("ann", "10.0.0.1")
    a.failed("correct horse battery", "10.0.0.1")
    with first.engine.connect() as conn:
        stored = " ".join(
            str(v) for row in conn.execute(select(schema.login_failures)) for v in row
        )
    assert "ann" not in stored and "horse" not in stored and "10.0.0.1" not in stored
    clock.advance(61)
    b.failed("bob", "10.0.0.2")
    with first.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.login_failures)).scalar() == 1
    first.close()
    second.close()


def test_limiter_forgets_failures_after_a_success(database_url: str) -> None:
    store = open_store(database_url)
    limiter = LoginLimiter(store.engine, 2, FakeClock())
    limiter.failed("ann", "a")
    limiter.succeeded("ann", "a")
    limiter.failed("ann", "a")
    assert not limiter.blocked("ann", "a")
    store.close()


def test_users_are_created_once_and_authenticate(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.engine.begin() as conn:
            user = create_user(conn, "  Ann.Smith ", GOOD, "manager")
        assert user.username == "ann.smith"
        with store.engine.begin() as conn:
            with pytest.raises(AuthError, match="exists already"):
                create_user(conn, "ANN.SMITH", GOOD, "viewer")
            with pytest.raises(AuthError, match="unknown role"):
                create_user(conn, "bob", GOOD, "root")
            with pytest.raises(AuthError, match="invalid user name"):
                create_user(conn, "bob smith", GOOD, "viewer")
            with pytest.raises(AuthError, match="shorter"):
                create_user(conn, "bob", "abc", "viewer")
        with store.engine.connect() as conn:
            found = authenticate(conn, "Ann.Smith", GOOD)
            assert found is not None and found.role == "manager"
            assert authenticate(conn, "ann.smith", "wrong password here") is None
            assert authenticate(conn, "nobody", GOOD) is None
            stored = conn.execute(schema.users.select()).one()
            assert GOOD not in stored.password_hash
        with store.engine.begin() as conn:
            conn.execute(update(schema.users).values(disabled=True))
        with store.engine.connect() as conn:
            assert authenticate(conn, "ann.smith", GOOD) is None
            assert find_user(conn, "ann.smith") is not None
    finally:
        store.close()
