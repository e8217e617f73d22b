"""The one exception type users see: a clear one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Iterable


class GanlabError(Exception):
    """A problem with the user's input or files; the CLI prints it as one line.

    ``exit_code`` 2 means bad input (the same code Typer uses for usage errors);
    other failures (a diverged run) use 1.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UnknownNameError(GanlabError):
    """A variant, dataset, metric or option name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        listing = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {listing}")
        self.kind, self.name, self.known = kind, name, known


class RegistrationError(GanlabError):
    """A plugin tried to register something invalid (bad type, duplicate name)."""


class DivergenceError(GanlabError):
    """Training produced NaN or inf; the run keeps its last good checkpoint."""

    exit_code = 1
