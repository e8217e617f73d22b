"""Plugin discovery: the ``ganlab`` entry-point group, loaded one plugin at a time.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import,
so entry points are loaded here individually: a broken plugin is recorded by name (with
its distribution and the reason) and every other plugin keeps working.

``GANLAB_DISABLE_PLUGINS=name1,name2`` skips named plugins entirely.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from ganlab import builtins, hookspecs
from ganlab.hookspecs import PROJECT
from ganlab.registry import Registry

ENTRY_POINT_GROUP = "ganlab"
DISABLE_ENV = "GANLAB_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    error: str = ""  # empty when the plugin loaded and registered cleanly
    disabled: bool = False  # named in GANLAB_DISABLE_PLUGINS: listed, never imported

    @property
    def status(self) -> str:
        return "disabled" if self.disabled else "broken" if self.error else "ok"


@dataclass
class PluginSet:
    """The loaded plugin manager, the filled registry, and what happened to each plugin."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]

    def mark_broken(self, name: str, error: BaseException | str) -> None:
        info = self.plugins.setdefault(name, PluginInfo(name, "?", "?"))
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        info.error = " ".join(str(text).split())  # one line
        self.registry.remove_plugin(name)

    def call_each(self, hook_name: str, **kwargs: Any) -> None:
        """Call a hook plugin by plugin so one failure is contained to its plugin."""
        hook = getattr(self.manager.hook, hook_name)
        for impl in hook.get_hookimpls():
            name = impl.plugin_name
            if self.plugins.get(name, PluginInfo(name, "", "")).error:
                continue
            self.registry.current_plugin = name
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except (Exception, SystemExit) as exc:  # a third party's bug must not take the tool down
                self.mark_broken(name, exc)
            finally:
                self.registry.current_plugin = ""


def disabled_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def build_plugin_set(entry_points: list[importlib.metadata.EntryPoint] | None = None) -> PluginSet:
    """Load every enabled plugin and run its registration hook."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    pset = PluginSet(manager, Registry())
    # The core's own datasets and metrics arrive through the same hook as any plugin's.
    manager.register(builtins, name="ganlab.builtins")
    pset.plugins["ganlab.builtins"] = PluginInfo("ganlab.builtins", "ganlab", _version("ganlab"))

    skip = disabled_plugins()
    if entry_points is None:
        entry_points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    for ep in sorted(entry_points, key=_load_order):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        if ep.name in pset.plugins:
            other = pset.plugins[ep.name].distribution
            if other == info.distribution:
                continue  # one distribution seen twice on the path
            # Two distributions claim one plugin name: the first loaded keeps it.
            clash = PluginInfo(f"{ep.name}@{info.distribution}", info.distribution, info.version)
            pset.plugins[clash.name] = clash
            clash.error = f"plugin name {ep.name!r} is already taken by distribution {other}"
            continue
        pset.plugins[ep.name] = info
        if ep.name in skip:
            info.disabled = True
            continue
        try:
            manager.register(ep.load(), name=ep.name)
            manager.check_pending()  # a misspelt hook name fails here, loudly
        except (Exception, SystemExit) as exc:  # SystemExit: a plugin calling sys.exit on import
            if manager.has_plugin(ep.name):
                manager.unregister(name=ep.name)
            pset.mark_broken(ep.name, _describe_validation_error(exc) or exc)
    pset.call_each("ganlab_register", registry=pset.registry)
    return pset


def _describe_validation_error(exc: BaseException) -> str:
    """pluggy's message names the plugin by its module repr (a long path); say what is wrong."""
    if not isinstance(exc, pluggy.PluginValidationError):
        return ""
    hook = re.search(r"unknown hook '([^']+)'", str(exc))
    if hook:
        known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("ganlab_")))
        return f"PluginValidationError: unknown hook {hook.group(1)!r} (ganlab's hooks: {known})"
    return "PluginValidationError: " + re.sub(r" (in|for) plugin <[^>]*>", "", str(exc))


def _load_order(ep: importlib.metadata.EntryPoint) -> tuple[int, str]:
    """ganlab's own plugins first, then third parties by name: when a third-party plugin
    registers a name that is already taken, the third party is the one reported broken."""
    dist = getattr(ep, "dist", None)
    own = dist is not None and dist.name == "ganlab"
    return (0 if own else 1, ep.name)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@lru_cache(maxsize=1)
def get_plugin_set() -> PluginSet:
    """The process-wide plugin set, built on first use."""
    return build_plugin_set()


def get_registry() -> Registry:
    return get_plugin_set().registry
