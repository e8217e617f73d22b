"""The ``ganlab`` command line (Typer).

Results go to stdout; progress bars and errors go to stderr. A :class:`GanlabError`
anywhere becomes one line on stderr and its exit code (2 for bad input), never a traceback.
"""

from __future__ import annotations

import sys

import typer

from ganlab import __version__
from ganlab.cli.console import err_console, print_error
from ganlab.errors import GanlabError

app = typer.Typer(
    name="ganlab",
    help="Train, evaluate and compare GAN variants. Every variant is a plugin.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain one-line usage errors instead of boxed panels
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ganlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Train, evaluate and compare GAN variants. Every variant is a plugin."""


def _register_commands() -> None:
    # Each module adds its commands to ``app``; imported here to keep start-up in one place.
    from ganlab.cli import listing, sample, train  # noqa: F401


def _register_plugin_commands() -> None:
    from ganlab.plugins import get_plugin_set

    get_plugin_set().call_each("ganlab_cli", app=app)


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    try:
        _register_plugin_commands()
        app(args=argv, prog_name="ganlab")
    except GanlabError as exc:
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
