"""Consoles: stdout for results (and --json), stderr for progress and errors."""

from __future__ import annotations

from rich.console import Console

out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    # One line, no markup interpretation (paths may hold brackets).
    err_console.print(f"ganlab: error: {' '.join(message.split())}", markup=False, soft_wrap=True)
