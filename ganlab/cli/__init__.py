"""The ``ganlab`` command line (Typer).

Results go to stdout; progress bars and errors go to stderr. A :class:`GanlabError`
anywhere becomes one line on stderr and its exit code (2 for bad input), never a traceback.
"""

from __future__ import annotations

import sys

import typer

try:  # Typer >= 0.16 vendors Click; older versions depend on it
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from ganlab import __version__
from ganlab.cli.console import err_console, print_error
from ganlab.errors import GanlabError, UnknownNameError

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
    from ganlab.cli import bench, eval, listing, sample, train  # noqa: F401


def _register_plugin_commands() -> None:
    from ganlab.plugins import get_plugin_set

    get_plugin_set().call_each("ganlab_cli", app=app)


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    try:
        _register_plugin_commands()
        # standalone_mode=False: usage errors come back here, to be printed as one line.
        code = app(args=argv, prog_name="ganlab", standalone_mode=False)
    except GanlabError as exc:
        print_error(str(exc) + _broken_plugins_hint(exc))
        sys.exit(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # bare `ganlab`: the help text, as Click would print it
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        print_error(_usage_line(exc))
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except (MemoryError, RuntimeError) as exc:
        if not _is_out_of_memory(exc):
            raise  # a bug: the traceback is what a maintainer needs
        print_error(f"out of memory: {str(exc).strip().splitlines()[0][:200]} "
                    f"(try a smaller batch_size or network)")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)


def _broken_plugins_hint(exc: GanlabError) -> str:
    """An unknown name may belong to a plugin that failed to load: say which ones did."""
    if not isinstance(exc, UnknownNameError):
        return ""
    from ganlab.plugins import get_plugin_set

    broken = sorted(p.name for p in get_plugin_set().broken)
    return f" (plugins that failed to load: {', '.join(broken)}; see `ganlab list`)" if broken else ""


def _usage_line(exc: click_exceptions.ClickException) -> str:
    """Click's usage error as one line, with the hint to the command's --help."""
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{exc.format_message()}{where}"


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError subclasses RuntimeError; the CPU allocator raises a plain one.
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in str(exc))
