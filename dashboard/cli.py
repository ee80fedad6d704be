"""`liftwatch-dashboard`: serve the dashboard, migrate its database, manage users."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dashboard import __version__
from dashboard.config import ConfigError, DashboardConfig, complete, load_config
from dashboard.store import StoreError, open_store

Command = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace) -> DashboardConfig:
    if args.config is None:
        return complete({}, None)
    return load_config(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dashboard.app import create_app

    cfg = _config(args)
    host = args.host or cfg.web.host
    port = args.port or cfg.web.port
    logging.getLogger("liftwatch").info("dashboard on http://%s:%d", host, port)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="info", access_log=False)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    store = open_store(cfg.database_url)
    print(f"database is at the newest schema ({store.dialect}); {store.events_stored()} lifts")
    store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liftwatch-dashboard",
        description="liftwatch dashboard: ingest lift events, team metrics, alerts.",
    )
    parser.add_argument("--version", action="version", version=f"liftwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, fn: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, help="DASHBOARD.yaml (defaults apply without one)")
        p.set_defaults(fn=fn)
        return p

    serve = command("serve", cmd_serve, "run the web app, API and MQTT ingest")
    serve.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config: 8080)")
    command("migrate", cmd_migrate, "create or upgrade the database schema, then exit")
    from dashboard.cli_users import add_commands as add_user_commands

    add_user_commands(command)
    from dashboard.demo import add_command as add_demo_command

    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (ConfigError, StoreError) as exc:
        print(f"liftwatch-dashboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
