"""The only place ganlab's hooks are declared.

A plugin is a module (or object) with functions marked ``@ganlab.hookimpl`` whose names
match the specs below. CONTRIBUTING.md documents each one; a test fails if a hook here
is missing from it.
"""

from __future__ import annotations

import pluggy

PROJECT = "ganlab"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ganlab_register(registry):
    """Register what this plugin adds: variants, datasets, metrics.

    :param registry: the :class:`ganlab.registry.Registry`; call its ``add_variant``,
        ``add_dataset`` and ``add_metric`` methods.

    Called once per process, when the plugin manager is first built (before any CLI
    command runs). If it raises, everything this plugin registered is withdrawn and
    the plugin is listed as broken; other plugins are unaffected.
    """


@hookspec
def ganlab_cli(app):
    """Add commands to the ``ganlab`` command-line tool.

    :param app: the root :class:`typer.Typer`; call ``app.command()`` or
        ``app.add_typer()`` on it.

    Called once when the CLI starts, after every ``ganlab_register`` hook. A failure
    here marks the plugin broken and leaves the built-in commands working.
    """
