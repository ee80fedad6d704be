"""User and token commands of `liftwatch-dashboard`: create-user, list-users, tokens.

Passwords are read from the terminal (twice) or from standard input with
``--password-stdin``, never from an argument: arguments end up in shell history and in
the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

from dashboard import auth
from dashboard.store import open_store

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


@contextmanager
def _transaction(args: argparse.Namespace) -> Iterator[Connection]:
    """One transaction on the configured database, closed whatever happens."""
    from dashboard.cli import _config

    store = open_store(_config(args).database_url)
    try:
        with store.engine.begin() as conn:
            yield conn
    finally:
        store.close()


def _fail(message: str) -> int:
    print(f"liftwatch-dashboard: {message}", file=sys.stderr)
    return 1


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        return None
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    try:
        name = auth.normalise_username(args.username)
    except auth.AuthError as exc:
        return _fail(str(exc))
    password = _read_password(args)
    if password is None:
        return _fail("the passwords differ; nothing created")
    problem = auth.password_problem(password, name)
    if problem is not None:
        return _fail(f"{problem}; nothing created")
    try:
        with _transaction(args) as conn:
            user = auth.create_user(conn, name, password, args.role)
    except auth.AuthError as exc:
        return _fail(str(exc))
    print(f"created user {user.username} ({user.role})")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if password is None:
        return _fail("the passwords differ; password unchanged")
    try:
        with _transaction(args) as conn:
            auth.set_password(conn, args.username, password)
    except auth.AuthError as exc:
        return _fail(f"{exc}; password unchanged")
    print(f"password of {args.username.strip().lower()} changed; their sessions ended")
    return 0


def cmd_disable_user(args: argparse.Namespace) -> int:
    try:
        with _transaction(args) as conn:
            auth.set_disabled(conn, args.username, not args.enable)
    except auth.AuthError as exc:
        return _fail(str(exc))
    state = "enabled" if args.enable else "disabled (sessions ended, tokens refused)"
    print(f"user {args.username.strip().lower()} {state}")
    return 0


def cmd_list_users(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        users = auth.list_users(conn)
    for u in users:
        state = " (disabled)" if u.disabled else ""
        print(f"{u.username}\t{u.role}\t{u.created_at:%Y-%m-%d %H:%M}Z{state}")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    try:
        with _transaction(args) as conn:
            record, token = auth.create_token(conn, args.username, args.name)
    except auth.AuthError as exc:
        return _fail(str(exc))
    print(
        f"token {record.id} {record.name!r} for {record.username}; shown only now:",
        file=sys.stderr,
    )
    print(token)
    return 0


def cmd_list_tokens(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        tokens = auth.list_tokens(conn)
    for t in tokens:
        used = f"{t.last_used:%Y-%m-%d %H:%M}Z" if t.last_used else "never used"
        state = "revoked" if t.revoked else "active"
        print(f"{t.id}\t{t.username}\t{t.name}\t{state}\t{used}")
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    with _transaction(args) as conn:
        found = auth.revoke_token(conn, args.token_id)
    if not found:
        return _fail(f"no token {args.token_id} (see list-tokens)")
    print(f"token {args.token_id} revoked")
    return 0


def add_commands(command: AddCommand) -> None:
    p: Any = command("create-user", cmd_create_user, "add a user who can log in to the pages")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=auth.ROLES)
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p = command("set-password", cmd_set_password, "give a user a new password")
    p.add_argument("username")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p = command("disable-user", cmd_disable_user, "stop a user's logins, sessions and tokens")
    p.add_argument("username")
    p.add_argument("--enable", action="store_true", help="enable the user again")
    command("list-users", cmd_list_users, "list users and their roles")
    p = command("create-token", cmd_create_token, "make an API bearer token (printed once)")
    p.add_argument("username", help="the token acts with this user's role")
    p.add_argument("--name", required=True, help="what the token is for, e.g. 'grafana'")
    command("list-tokens", cmd_list_tokens, "list API tokens (never the tokens themselves)")
    p = command("revoke-token", cmd_revoke_token, "revoke an API token at once")
    p.add_argument("token_id", type=int, help="the id shown by list-tokens")
