"""One registry for every network: stable names -> entrypoints with visible hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: its stable name, family and default keyword arguments."""

    name: str
    family: str
    defaults: dict[str, Any]
    builder: Callable[..., nn.Module]


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, family: str, builder: Callable[..., nn.Module], **defaults: Any) -> None:
    """Register `builder(**defaults)` under `name`; names are unique and never reused."""
    if name in _MODELS:
        raise ValueError(f"network {name!r} is already registered")
    _MODELS[name] = ModelEntry(name, family, dict(defaults), builder)


def list_models(family: str | None = None) -> list[str]:
    """Sorted names of registered networks, optionally only one family ('hat', 'autoencoder')."""
    return sorted(n for n, e in _MODELS.items() if family is None or e.family == family)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for `name`; a clear ValueError naming the choices otherwise."""
    if name not in _MODELS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(list_models())}")
    return _MODELS[name]


def model_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    """Full keyword arguments of `name` after `overrides` (what the manifest records)."""
    entry = model_entry(name)
    unknown = set(overrides) - set(entry.defaults)
    if unknown:
        raise ValueError(f"network {name!r} has no hyperparameter(s) {sorted(unknown)}; "
                         f"it has {sorted(entry.defaults)}")
    return {**entry.defaults, **overrides}


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build network `name` with its registered hyperparameters, `overrides` replacing some of them."""
    return model_entry(name).builder(**model_kwargs(name, **overrides))
