"""The registry: validated names for variants, datasets and metrics.

Plugins add to it from their ``ganlab_register`` hook; the CLI and the loop read from it.
Every entry remembers the plugin that added it, so ``ganlab list`` can say where a
variant came from and a failing plugin's entries can be withdrawn as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ganlab.errors import RegistrationError, UnknownNameError
from ganlab.interfaces import DataKind, NetFactory, Objective, VariantSpec

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset factory: ``factory(**options)`` returns a :class:`ganlab.data.GanDataset`.

    ``options`` names the keyword options the factory takes, with their defaults, so
    ``--data-opt key=value`` can be checked and typed before anything is loaded.
    """

    name: str
    factory: Callable[..., Any]
    description: str
    kind: DataKind
    options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A metric: ``compute(context) -> dict[str, float]``, with its protocol stated.

    ``kinds`` lists the data kinds it applies to; ``cheap`` metrics may run during
    training (``--eval-every``).
    """

    name: str
    compute: Callable[..., Mapping[str, Any]]
    description: str
    kinds: tuple[str, ...] = ("points", "image")
    cheap: bool = False
    plugin: str = ""


class Registry:
    """Validated name -> spec tables. Names are lower-case, unique across plugins."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Any]] = {"variant": {}, "dataset": {}, "metric": {}}
        #: Name of the plugin whose hook is running; stamped onto what it registers.
        self.current_plugin = ""

    # ---- adding ----------------------------------------------------------------------
    def add_variant(self, spec: VariantSpec) -> None:
        if not isinstance(spec, VariantSpec):
            raise RegistrationError(f"add_variant expects a VariantSpec, got {type(spec).__name__}")
        if not (isinstance(spec.objective, type) and issubclass(spec.objective, Objective)):
            raise RegistrationError(
                f"variant {spec.name!r}: objective must be a subclass of ganlab.interfaces.Objective")
        if getattr(spec.objective, "__abstractmethods__", None):
            missing = ", ".join(sorted(spec.objective.__abstractmethods__))
            raise RegistrationError(f"variant {spec.name!r}: objective does not implement {missing}")
        for kind, factory in spec.nets.items():
            if kind not in ("points", "image") or not callable(factory):
                raise RegistrationError(
                    f"variant {spec.name!r}: nets must map 'points'/'image' to a callable")
        if not spec.description or not spec.citation:
            raise RegistrationError(f"variant {spec.name!r}: description and citation are required")
        self._add("variant", replace(spec, plugin=self.current_plugin))

    def add_dataset(self, name: str, factory: Callable[..., Any], description: str,
                    kind: DataKind, options: Mapping[str, Any] | None = None) -> None:
        if not callable(factory):
            raise RegistrationError(f"dataset {name!r}: factory must be callable")
        if kind not in ("points", "image"):
            raise RegistrationError(f"dataset {name!r}: kind must be 'points' or 'image'")
        self._add("dataset", DatasetSpec(name, factory, description, kind, dict(options or {}),
                                         self.current_plugin))

    def add_metric(self, name: str, compute: Callable[..., Mapping[str, Any]], description: str,
                   kinds: tuple[str, ...] = ("points", "image"), cheap: bool = False) -> None:
        if not callable(compute):
            raise RegistrationError(f"metric {name!r}: compute must be callable")
        self._add("metric", MetricSpec(name, compute, description, tuple(kinds), cheap,
                                       self.current_plugin))

    def _add(self, table: str, spec: Any) -> None:
        name = spec.name
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise RegistrationError(
                f"{table} name {name!r} is invalid: use lower-case letters, digits, '-', '_', '.'")
        existing = self._tables[table].get(name)
        if existing is not None:
            raise RegistrationError(
                f"{table} {name!r} is already registered by plugin {existing.plugin!r}")
        self._tables[table][name] = spec

    def remove_plugin(self, plugin: str) -> None:
        """Withdraw everything one plugin registered (its hook failed half-way)."""
        for table in self._tables.values():
            for name in [n for n, s in table.items() if s.plugin == plugin]:
                del table[name]

    # ---- reading ---------------------------------------------------------------------
    def variant(self, name: str) -> VariantSpec:
        return self._get("variant", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self._get("dataset", name)

    def metric(self, name: str) -> MetricSpec:
        return self._get("metric", name)

    def _get(self, table: str, name: str) -> Any:
        try:
            return self._tables[table][name]
        except KeyError:
            raise UnknownNameError(table, name, self._tables[table]) from None

    def names(self, table: str) -> list[str]:
        return sorted(self._tables[table])

    def variants(self) -> Iterator[VariantSpec]:
        return (self._tables["variant"][n] for n in self.names("variant"))

    def datasets(self) -> Iterator[DatasetSpec]:
        return (self._tables["dataset"][n] for n in self.names("dataset"))

    def metrics(self) -> Iterator[MetricSpec]:
        return (self._tables["metric"][n] for n in self.names("metric"))

    def nets_for(self, variant: VariantSpec, kind: str) -> NetFactory:
        """The variant's net factory for a data kind, else the core's default nets."""
        if kind in variant.nets:
            return variant.nets[kind]
        from ganlab.nets import default_nets

        return default_nets
