"""The `dalal` command line.

Building the parser must stay cheap: `dalal --help` and `dalal --version` import no Qt, no
numpy-heavy service, no scikit-learn and no broker SDK (some SDKs even touch the network at
import). Every heavy import lives inside the handler that needs it, and each module in
``COMMAND_MODULES`` must follow the same rule in its ``register``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import Settings

# Before settings, Qt and the services load: the start of the cold-start measurement.
IMPORTED_AT = time.perf_counter()

DIST_NAME = "dalal-terminal"
PROG = "dalal"
DEBUG_ENV = "DALAL_DEBUG"  # 1: let an unexpected error show its traceback

# Modules providing ``register(subparsers) -> None``; each adds its own subcommands and sets
# ``func`` (a handler taking the parsed namespace and returning an exit code) on them.
COMMAND_MODULES: list[str] = [
    "app.commands.vault",
    "app.commands.credentials",
    "app.commands.audit",
    "app.commands.data",
    "app.commands.model",
    "app.commands.apikey",
    "app.commands.login",
    "app.commands.check_connections",
    "app.commands.node",
    "app.commands.backtest",
    "app.commands.charges",
]

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad option value: shown as one line, exit status 2."""


def package_version() -> str:
    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        return "unknown (not installed)"


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options every command accepts, before or after the subcommand name.

    On subcommands the defaults are suppressed so that ``dalal --profile x run`` keeps the
    value given before the subcommand instead of being reset by the subparser's default.
    """
    common = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    common.add_argument(
        "--profile", default=default, help="settings profile name (letters, digits, _ and -)"
    )
    common.add_argument(
        "--config", type=Path, default=default, metavar="PATH", help="settings file (JSON)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dalal Terminal: a trading terminal for Indian markets. "
        "With no command, starts the desktop terminal.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"{DIST_NAME} {package_version()}")
    parser.set_defaults(func=_run_desktop)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    common = _common_options(suppress=True)

    run = sub.add_parser("run", parents=[common], help="start the desktop terminal (default)")
    run.set_defaults(func=_run_desktop)

    headless = sub.add_parser(
        "headless",
        parents=[common],
        help="run the services without a window, with health checks and Prometheus metrics",
        description="Run the feed and broker the settings choose (the simulated market and "
        "paper broker by default, or a registered live broker) with no GUI, serving /livez, "
        "/healthz, "
        "/readyz, /metrics and the /v1 control API over HTTP. Stops cleanly on SIGTERM or "
        "SIGINT; SIGHUP makes it pick up a broker token saved by `dalal login BROKER`.",
    )
    headless.add_argument(
        "--listen",
        default="127.0.0.1:9400",
        metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:9400; port 0 picks a free port and prints it)",
    )
    headless.add_argument("--seed", type=int, help="simulator seed (default from settings)")
    headless.add_argument(
        "--ticks-per-second", type=float, metavar="R", help="simulated ticks per second"
    )
    headless.add_argument(
        "--market-hours",
        action="store_true",
        help="tick only in NSE market hours (09:15-15:30 IST) instead of always",
    )
    headless.add_argument(
        "--insecure-bind",
        action="store_true",
        help="allow a non-loopback address without TLS (only on a trusted private network)",
    )
    headless.add_argument(
        "--tls-cert", type=Path, metavar="PEM", help="TLS certificate chain (TLS 1.3 only)"
    )
    headless.add_argument("--tls-key", type=Path, metavar="PEM", help="TLS private key")
    headless.add_argument(
        "--key-fd",
        type=int,
        metavar="FD",
        help="read the profile database key from this file descriptor",
    )
    headless.add_argument(
        "--key-credential",
        metavar="NAME",
        help="read the profile database key from the systemd credential NAME "
        "(default: dalal-db-key when $CREDENTIALS_DIRECTORY has it)",
    )
    headless.add_argument(
        "--no-database",
        action="store_true",
        help="run an in-memory session: no order journal, API keys or audit log",
    )
    headless.add_argument(
        "--metrics-require-key",
        action="store_true",
        help="ask for a read API key on /metrics even from loopback (e.g. behind a proxy)",
    )
    headless.set_defaults(func=_run_headless)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def load_cli_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Load settings from ``--config`` (or the default file) and apply command-line overrides.

    Overrides go through validation again, so ``--ticks-per-second 0`` is refused with the
    same message a bad settings file would give.
    """
    from pydantic import ValidationError

    from app.settings import Settings, SettingsError, load_settings

    settings = load_settings(getattr(args, "config", None))
    updates = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "profile", None) is not None:
        updates["profile"] = args.profile
    if not updates:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), **updates})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise SettingsError(f"command line: {problems}") from None


def _run_desktop(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    import logging

    from app.desktop import run_desktop
    from app.logs import configure_logging

    configure_logging(logging.WARNING)

    return run_desktop(settings, started_at=IMPORTED_AT, config_path=args.config)


def _run_headless(args: argparse.Namespace) -> int:
    from app.headless import ListenError, check_exposure, parse_listen
    from app.logs import configure_logging

    try:
        tls = args.tls_cert is not None or args.tls_key is not None
        check_exposure(parse_listen(args.listen), insecure_bind=args.insecure_bind, tls=tls)
    except ListenError as e:
        raise UsageError(str(e)) from None
    settings = load_cli_settings(
        args,
        seed=args.seed,
        ticks_per_second=args.ticks_per_second,
        always_open=False if args.market_hours else None,
    )
    configure_logging()
    from app.headless import NoDatabaseKey, run_headless

    try:
        return run_headless(
            settings,
            args.listen,
            insecure_bind=args.insecure_bind,
            version=package_version(),
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            key_fd=args.key_fd,
            key_credential=args.key_credential,
            use_database=not args.no_database,
            metrics_require_key=args.metrics_require_key,
        )
    except ListenError as e:
        raise UsageError(str(e)) from None
    except NoDatabaseKey as e:
        print(f"{PROG}: error: cannot open the profile database: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and argparse's own usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    handler: Handler = args.func
    from app.settings import SettingsError

    _use_cached_holidays()
    try:
        check_common_options(args)
        return handler(args)
    except (SettingsError, UsageError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except EOFError:
        print(f"{PROG}: error: standard input ended before an answer was given", file=sys.stderr)
        return 2
    except OSError as e:  # a path or descriptor the command could not use
        where = f": {e.filename}" if e.filename else ""
        print(f"{PROG}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        print(
            f"{PROG}: internal error: {type(e).__name__}: {e} "
            f"(set {DEBUG_ENV}=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 70


def check_common_options(args: argparse.Namespace) -> None:
    """Options every command shares, refused before the command runs.

    A ``--config`` that does not exist is a typo, not a request for the defaults; a
    ``--key-fd`` that is not open would otherwise fail half-way through the command.
    """
    config: Path | None = getattr(args, "config", None)
    may_be_new = getattr(args, "config_may_be_new", False)  # a command that writes it
    if config is not None and not config.is_file() and not (may_be_new and not config.exists()):
        what = "is not a file" if config.exists() else "does not exist"
        raise UsageError(f"settings file {config} {what}")
    key_fd: int | None = getattr(args, "key_fd", None)
    if key_fd is not None:
        try:
            os.fstat(key_fd)
        except OSError:
            raise UsageError(
                f"--key-fd {key_fd} is not an open file descriptor (start the command as "
                f"`dalal ... --key-fd {key_fd} {key_fd}<keyfile`)"
            ) from None


def _use_cached_holidays() -> None:
    """NSE's holiday list, when ``dalal data holidays --fetch`` cached one (else bundled)."""
    from services import calendar
    from services.storage.paths import default_cache_dir

    calendar.install(calendar.load_cache(default_cache_dir() / calendar.CACHE_NAME))


if __name__ == "__main__":
    sys.exit(main())
