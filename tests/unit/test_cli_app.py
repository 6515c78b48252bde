"""The application builds only the module of the command it is given."""

from __future__ import annotations

import importlib

import pytest
import typer
import typer.main

from lakeguard.cli import command_word, hoist_global_options, run
from lakeguard.cli.app import COMMAND_MODULES, COMMANDS, build_app


def _names(app: typer.Typer) -> set[str]:
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_maps_to_the_module_that_registers_it() -> None:
    for name in COMMAND_MODULES:
        app = typer.Typer()

        @app.callback()
        def _callback() -> None:
            pass

        importlib.import_module(f"lakeguard.cli.{name}").register(app)
        assert {command for command, module in COMMANDS.items() if module == name} == _names(app)
    assert set(COMMANDS) == _names(build_app())


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["backup", "s3://b/p", "--repo", "r"], "backup"),
        (["--json", "ls", "snap"], "ls"),
        (["verify", "s3://b", "--endpoint-url", "http://h:1", "-q"], "verify"),
        (["--endpoint-url=http://h:1", "--profile", "p", "prune"], "prune"),
        (["--version"], None),
        (["--help"], None),
        (["--region"], None),
        ([], None),
    ],
)
def test_command_word(argv: list[str], word: str | None) -> None:
    assert command_word(hoist_global_options(argv)) == word


def test_one_command_app_holds_that_command_only() -> None:
    assert _names(build_app("ls")) == {"snapshots", "ls", "find"}
    assert _names(build_app("nonsense")) == set(COMMANDS)


def test_unknown_command_still_gets_click_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["backpu"]) == 2
    assert "Did you mean 'backup'?" in capsys.readouterr().err


def test_command_help_with_one_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["prune", "--help"]) == 0
    assert "Usage: lakeguard prune" in capsys.readouterr().out
