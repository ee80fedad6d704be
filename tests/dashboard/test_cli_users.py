"""create-user, list-users and the token commands against a real database."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from dashboard.auth import authenticate
from dashboard.cli import main
from dashboard.store import open_store
from tests.support.web import dashboard_client, login

PASSWORD = "correct horse battery"


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def _run(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(list(argv))


def _authenticates(url: str, username: str, password: str) -> str | None:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            user = authenticate(conn, username, password)
    finally:
        store.close()
    return user.role if user else None


def test_create_user_from_stdin(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _run(
        monkeypatch, PASSWORD + "\n", "create-user", "Ann", "--role", "manager", "--password-stdin"
    )
    assert rc == 0
    assert "created user ann (manager)" in capsys.readouterr().out
    assert _authenticates(db, "ann", PASSWORD) == "manager"
    again = _run(
        monkeypatch, PASSWORD + "\n", "create-user", "ann", "--role", "admin", "--password-stdin"
    )
    assert again == 1
    assert "exists already" in capsys.readouterr().err
    assert _authenticates(db, "ann", PASSWORD) == "manager"


@pytest.mark.parametrize("password", ["", "short", "ann-is-my-name-ok"])
def test_create_user_refuses_weak_passwords(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    rc = _run(
        monkeypatch, password + "\n", "create-user", "ann", "--role", "viewer", "--password-stdin"
    )
    assert rc == 1
    assert "nothing created" in capsys.readouterr().err
    assert main(["list-users"]) == 0
    assert capsys.readouterr().out == ""


def test_create_user_asks_twice_and_refuses_a_mismatch(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["create-user", "ann", "--role", "viewer"]) == 1
    assert "differ" in capsys.readouterr().err
    answers = iter([PASSWORD, PASSWORD])
    assert main(["create-user", "ann", "--role", "viewer"]) == 0
    assert _authenticates(db, "ann", PASSWORD) == "viewer"


def test_create_user_needs_a_known_role(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit_:
        _run(monkeypatch, PASSWORD, "create-user", "ann", "--role", "root", "--password-stdin")
    assert exit_.value.code == 2


def test_list_users(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, role in (("zoe", "admin"), ("ann", "viewer")):
        _run(monkeypatch, PASSWORD, "create-user", name, "--role", role, "--password-stdin")
    capsys.readouterr()
    assert main(["list-users"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["ann", "viewer"], ["zoe", "admin"]]
    assert PASSWORD not in "".join(lines)


def test_token_from_the_cli_works_until_revoked(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, PASSWORD, "create-user", "grafana", "--role", "viewer", "--password-stdin")
    capsys.readouterr()
    assert main(["create-token", "grafana", "--name", "wallboard"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("lwt_") and "shown only now" in out.err
    assert main(["create-token", "nobody", "--name", "x"]) == 1
    capsys.readouterr()

    with dashboard_client(db) as client:
        assert _get(client, token) == 200
        assert main(["list-tokens"]) == 0
        listed = capsys.readouterr().out
        assert "1\tgrafana\twallboard\tactive\t" in listed
        assert token not in listed
        assert main(["revoke-token", "1"]) == 0
        assert _get(client, token) == 401
        assert main(["revoke-token", "99"]) == 1


def _get(client: TestClient, token: str) -> int:
    return client.get(
        "/api/v1/organisation", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_console_script_creates_a_user(database_url: str) -> None:
    """The installed entry point, as an operator runs it, with the password piped in."""
    exe = os.path.join(os.path.dirname(sys.executable), "liftwatch-dashboard")
    done = subprocess.run(
        [exe, "create-user", "ops", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert _authenticates(database_url, "ops", PASSWORD) == "admin"


def test_set_password_replaces_it_and_ends_sessions(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, PASSWORD, "create-user", "ann", "--role", "admin", "--password-stdin")
    new = "a different long secret"
    with dashboard_client(db) as client:
        assert login(client, "ann").status_code == 303
        assert _run(monkeypatch, "short\n", "set-password", "ann", "--password-stdin") == 1
        assert "password unchanged" in capsys.readouterr().err
        assert client.get("/api/v1/organisation").status_code == 200
        assert _run(monkeypatch, new + "\n", "set-password", "ann", "--password-stdin") == 0
        assert client.get("/api/v1/organisation").status_code == 401
    assert _authenticates(db, "ann", PASSWORD) is None
    assert _authenticates(db, "ann", new) == "admin"
    assert _run(monkeypatch, new, "set-password", "nobody", "--password-stdin") == 1


def test_disable_user_stops_sessions_and_tokens_until_enabled(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, PASSWORD, "create-user", "ann", "--role", "viewer", "--password-stdin")
    main(["create-token", "ann", "--name", "board"])
    token = capsys.readouterr().out.splitlines()[-1]
    with dashboard_client(db) as client:
        login(client, "ann")
        assert main(["disable-user", "ann"]) == 0
        assert client.get("/api/v1/organisation").status_code == 401
        assert _get(client, token) == 401
        assert login(client, "ann").status_code == 401
        assert main(["disable-user", "ann", "--enable"]) == 0
        assert _get(client, token) == 200
        assert login(client, "ann").status_code == 303
    assert main(["disable-user", "nobody"]) == 1
