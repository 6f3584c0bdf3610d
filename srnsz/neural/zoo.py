"""Shipped network weights: a manifest, sha256 verification before loading, and the network registry.

`pretrained/manifest.json` maps a weights name to {file, architecture, kwargs, sha256, ...}. Folders named in the
environment variable SRNSZ_WEIGHTS (os.pathsep-separated, each with its own manifest.json) are searched first, so
weights a user trained (`srnsz-train ... export.directory=DIR`) are found by name. Loading checks the
file's sha256 against the manifest (and, when the caller asks for one, against an expected hash from a stream
header) before `torch.load(weights_only=True)` touches it. Imports torch lazily so `import srnsz` stays light.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnsz.assets import asset_dir
from srnsz.errors import InvalidInputError, SrnszError

PRETRAINED_DIR = asset_dir("pretrained")
MANIFEST = "manifest.json"


class WeightsError(SrnszError):
    """Weights are missing, unknown, damaged, or do not fit their network."""


@dataclass(frozen=True)
class WeightsEntry:
    """One shipped weights file as the manifest describes it."""

    name: str
    file: str
    architecture: str
    kwargs: dict[str, Any]
    sha256: str
    recipe: str
    data: dict[str, Any]
    date: str
    validation: dict[str, float]
    directory: str = ""  # folder the entry was found in


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path | None = None) -> dict[str, WeightsEntry]:
    """All entries of `directory/manifest.json` (the shipped `pretrained/` by default); {} if there is none."""
    path = Path(directory or PRETRAINED_DIR) / MANIFEST
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise TypeError("the manifest must be a JSON object of name -> entry")
        return {name: _entry(name, entry, path.parent) for name, entry in raw.items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{path}: not a valid weights manifest ({exc})") from None


_FIELD_TYPES: dict[str, type] = {"file": str, "architecture": str, "kwargs": dict, "sha256": str, "recipe": str,
                                 "data": dict, "date": str, "validation": dict}


def _entry(name: str, entry: Any, directory: Path) -> WeightsEntry:
    """`entry` as a WeightsEntry; TypeError naming the field when a field is missing, unknown or mistyped, since
    later steps (hash lookup, path joins, network kwargs) assume these types."""
    if not isinstance(entry, dict):
        raise TypeError(f"entry {name!r} is not an object")
    missing = sorted(set(_FIELD_TYPES) - set(entry))
    unknown = sorted(set(entry) - set(_FIELD_TYPES))
    if missing or unknown:
        raise TypeError(f"entry {name!r} lacks fields {missing}" if missing else
                        f"entry {name!r} has unknown fields {unknown}")
    for field, kind in _FIELD_TYPES.items():
        if not isinstance(entry[field], kind):
            raise TypeError(f"entry {name!r}: {field} is {type(entry[field]).__name__}, not {kind.__name__}")
    return WeightsEntry(name=name, directory=str(directory), **entry)


def search_path(directory: Path | None = None) -> list[Path]:
    """Folders searched for weights: `directory` if given, else SRNSZ_WEIGHTS folders then the shipped one."""
    if directory is not None:
        return [Path(directory)]
    extra = [Path(p) for p in os.environ.get("SRNSZ_WEIGHTS", "").split(os.pathsep) if p]
    return [*extra, PRETRAINED_DIR]


def all_weights(directory: Path | None = None) -> dict[str, WeightsEntry]:
    """Every entry on the search path; earlier folders win on equal names."""
    entries: dict[str, WeightsEntry] = {}
    for folder in reversed(search_path(directory)):
        entries.update(read_manifest(folder))
    return entries


def list_pretrained(directory: Path | None = None) -> list[str]:
    """Names of the weights on the search path."""
    return sorted(all_weights(directory))


def find_weights(name: str, directory: Path | None = None) -> WeightsEntry:
    """The manifest entry for `name`, which may be a weights name or a hash prefix (8+ hex digits)."""
    entries = all_weights(directory)
    if name in entries:
        return entries[name]
    by_hash = [e for e in entries.values() if len(name) >= 8 and e.sha256.startswith(name.lower())]
    if len(by_hash) == 1:
        return by_hash[0]
    known = ", ".join(sorted(entries)) or "(none shipped)"
    raise WeightsError(f"no pretrained weights named {name!r}; available: {known}")


_LOADED: dict[tuple[str, str], tuple[Any, WeightsEntry]] = {}


def with_hash(sha256: str, name: str) -> WeightsEntry | None:
    """The entry on the search path whose weights have this ``sha256`` (one named ``name`` first, then any, earlier
    folders first), shadowed ones included; None where there is none."""
    found = [e for folder in search_path() for e in read_manifest(folder).values() if e.sha256 == sha256]
    return next((e for e in found if e.name == name), found[0] if found else None)


def check_name(name: Any) -> str:
    """``name`` if it can name weights (a non-empty string), else a clear InvalidInputError."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"model must be the name of weights (a string), got {name!r}")
    return name


def cached_model(name: str, device: str, sha256: str | None = None, network: type | None = None
                 ) -> tuple[Any, WeightsEntry]:
    """load_pretrained once per (weights hash, device) in this process. ``sha256`` (from a stream header) names the
    weights a stream was made with: where the entry found under ``name`` has other weights (a user's weights of the
    same name earlier on the search path), the entry with that hash is used, else the clear mismatch error.
    ``network``: the class the caller needs (a WeightsError for weights of another kind of network)."""
    entry = find_weights(name)
    if sha256 is not None and entry.sha256 != sha256:
        entry = with_hash(sha256, name) or entry
        if entry.sha256 != sha256:
            load_pretrained(name, device, expected_sha256=sha256)  # raises the "use the same weights" error
    key = (entry.sha256, device)
    if key not in _LOADED:
        _LOADED[key] = load_pretrained(entry.name, device, directory=Path(entry.directory))
    model, entry = _LOADED[key]
    if network is not None and not isinstance(model, network):
        raise WeightsError(f"weights {name!r} are a {entry.architecture} network, not a {network.__name__}")
    return model, entry


def load_pretrained(name: str, device: str = "cpu", expected_sha256: str | None = None,
                    directory: Path | None = None) -> tuple[Any, WeightsEntry]:
    """(network in eval mode on `device`, its entry) for weights `name`, verified by sha256 before loading."""
    import torch

    from srnsz import networks

    entry = find_weights(name, directory)
    path = Path(entry.directory) / entry.file
    if not path.exists():
        raise WeightsError(f"weights file {path} for {name!r} is missing")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise WeightsError(f"weights file {path.name} has sha256 {actual[:16]}..., the manifest says "
                           f"{entry.sha256[:16]}...: the file is damaged or replaced")
    if expected_sha256 is not None and actual != expected_sha256:
        raise WeightsError(f"the stream was made with weights {expected_sha256[:16]}..., but {name!r} is "
                           f"{actual[:16]}...: use the same weights to decompress")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch.load raises many types (UnpicklingError, EOFError, RuntimeError, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"weights file {path} cannot be loaded: {first}") from None
    try:
        model = networks.create_model(entry.architecture, **entry.kwargs)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"weights {path.name} do not fit network {entry.architecture!r}: {first}") from None
    return model.to(device).eval(), entry
