"""The typer application: global options, and one module per command."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from lakeguard import __version__
from lakeguard.cli.context import AppState
from lakeguard.errors import EXIT_INTERRUPTED, LakeguardError, UsageError
from lakeguard.storage import StoreSettings

# Each module has ``register(app)``; listed here so --help shows them in this order.
COMMAND_MODULES = (
    "inventory",
    "verify",
    "gaps",
    "history",
    "pitr",
    "undelete",
    "sync",
    "sandbox",
    "demo",
    "init",
    "backup",
    "restore",
    "snapshots",
    "query",
    "check",
    "forget",
)
# The commands of each module. A run builds only the module of the command it
# was given: typer turns every registered function into a click command up
# front, 1-2 ms each (33 ms for all of them, on every run).
MODULE_COMMANDS = {
    "snapshots": ("snapshots", "ls", "find"),
    "forget": ("forget", "prune"),
}
COMMANDS = {
    command: module
    for module in COMMAND_MODULES
    for command in MODULE_COMMANDS.get(module, (module,))
}


# What to do after Ctrl-C, per command: only what is true of that command.
_READ_ONLY = "nothing was changed; run the command again"
_FINISH = "run the same command again to finish the work (what is done is not redone)"
INTERRUPTED_HINTS = {
    "inventory": "no inventory file was written; run the command again",
    "verify": _READ_ONLY,
    "gaps": _READ_ONLY,
    "history": _READ_ONLY,
    "snapshots": _READ_ONLY,
    "ls": _READ_ONLY,
    "find": _READ_ONLY,
    "query": _READ_ONLY,
    "check": _READ_ONLY,
    "pitr": _FINISH,
    "undelete": _FINISH,
    "sync": _FINISH,
    "restore": "run the same command again to finish the work",
    "forget": _FINISH,
    "prune": _FINISH,
    "backup": (
        "no snapshot was recorded; run the same backup again "
        "(it reuses the archives this run wrote)"
    ),
}


class Interrupted(LakeguardError):
    """Ctrl-C (SIGINT) while a command ran."""

    exit_code = EXIT_INTERRUPTED


def interrupted_message(command: str | None) -> str:
    hint = INTERRUPTED_HINTS.get(command or "")
    return f"interrupted: {hint}" if hint else "interrupted"


class _Group(TyperGroup):
    """The root command. click turns KeyboardInterrupt into a silent exit 130
    (``standalone_mode=False`` returns it as a plain number); raised here as
    ``Interrupted``, it reaches ``cli.run`` to be reported like any other error."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted(interrupted_message(ctx.invoked_subcommand)) from exc


def click_exceptions() -> Any:
    """The click exceptions module typer uses (vendored in newer typer releases)."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer before 0.20 depends on click itself
        from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    return exceptions


def _version(value: bool) -> None:
    if value:
        print(f"lakeguard {__version__}")
        raise typer.Exit(0)


def build_app(command: str | None = None) -> typer.Typer:
    """The application; with ``command`` (a name in COMMANDS), that command's module only."""
    app = typer.Typer(
        name="lakeguard",
        cls=_Group,
        help="Protect and recover data lakes in S3-compatible object stores.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def main_options(
        ctx: typer.Context,
        endpoint_url: Annotated[
            str | None,
            typer.Option(
                "--endpoint-url",
                envvar="AWS_ENDPOINT_URL",
                help="S3 endpoint (default: AWS_ENDPOINT_URL, else AWS).",
                show_envvar=False,
            ),
        ] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
        region: Annotated[str | None, typer.Option("--region", help="AWS region.")] = None,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print one JSON document on stdout.")
        ] = False,
        verbose: Annotated[
            int, typer.Option("--verbose", "-v", count=True, help="More detail; tracebacks.")
        ] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results.")] = False,
        concurrency: Annotated[
            int, typer.Option("--concurrency", help="Requests in flight.", min=1, max=1024)
        ] = 16,
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
        ] = False,
    ) -> None:
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise UsageError(
                f"invalid --endpoint-url {endpoint_url!r}: use http://host:port or https://host"
            )
        ctx.obj = AppState(
            settings=StoreSettings(
                endpoint_url=endpoint_url or None,
                profile=profile,
                region=region,
                concurrency=concurrency,
            ),
            json=json_output,
            verbose=verbose,
            quiet=quiet,
        )

    modules = (COMMANDS[command],) if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        module = importlib.import_module(f"lakeguard.cli.{name}")
        module.register(app)
    return app
