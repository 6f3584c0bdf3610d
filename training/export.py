"""Export trained weights to `pretrained/<name>-<sha8>.pt` and record them in the manifest.

A name already in the target manifest is replaced only when asked (`replace`): streams record the hash of the
weights they were made with, so replacing an entry leaves every stream made with the old weights undecodable by
that name. A folder other than the shipped one may not take a shipped name either, since on SRNSZ_WEIGHTS it would
shadow the shipped weights for every later compression. Exports into one folder from several processes are
serialised by a lock on the folder's manifest.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srnsz.errors import SrnszError
from srnsz.neural.zoo import MANIFEST, PRETRAINED_DIR, read_manifest

# A weights name becomes part of a file name and a manifest key: one plain token, no folders, no leading dot.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LOCK = f".{MANIFEST}.lock"


class ExportError(SrnszError):
    """Weights cannot be exported under this name or into this folder."""


def _is_shipped_folder(directory: Path) -> bool:
    return directory.resolve() == Path(PRETRAINED_DIR).resolve()


def check_export(name: Any, directory: Path | None = None, replace: bool = False) -> None:
    """Raise ExportError unless weights named ``name`` may be exported into ``directory`` (default: the shipped
    pretrained/): a plain name, not a shipped one outside the shipped folder, not already in the folder's manifest
    unless ``replace``, a valid manifest there and a folder that can be written. Reads only: a run checks this
    before training, and export_weights again under the lock."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ExportError(f"export.name must be a plain name (letters, digits, '.', '_', '-'; not starting with "
                          f"'.', '_' or '-'; at most 100 characters), got {name!r}")
    target = Path(directory or PRETRAINED_DIR)
    if not _is_shipped_folder(target) and name in read_manifest(PRETRAINED_DIR):
        raise ExportError(f"{name!r} is the name of shipped weights: exported into {target} it would shadow them "
                          f"wherever that folder is on SRNSZ_WEIGHTS; give export.name=<another name>")
    if name in read_manifest(target) and not replace:  # read_manifest refuses an invalid manifest
        raise ExportError(f"{target / MANIFEST} already has weights named {name!r}; streams made with them would no "
                          f"longer decode by that name: give export.name=<another name>, or export.replace=true "
                          f"to replace them")
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write weights into {target}: {existing} is not a writable folder")


@contextmanager
def _manifest_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory``'s manifest (flock on a lock file there, removed on release)."""
    path = directory / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        # The holder before us removed this lock file on release: lock the one now at the path instead.
        os.close(fd)
    try:
        yield
    finally:
        # Removed while still held, so a process waiting on this file sees it gone and retries.
        with suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _file_mode() -> int:
    """The mode a new file gets under this process's umask (mkstemp's temporaries are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_new(directory: Path, prefix: str, data: bytes) -> Path:
    """``data`` in a new temporary file of ``directory`` with a unique name (the caller moves it into place)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _file_mode())
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def export_weights(model: nn.Module, name: str, architecture: str, kwargs: dict[str, Any], recipe: str,
                   data: dict[str, Any], validation: dict[str, float], directory: Path | None = None,
                   replace: bool = False) -> Path:
    """Write `model`'s state dict (fp32, CPU) and add manifest entry `name` (replace it only with ``replace``);
    returns the weights path. Refused as :func:`check_export` says, before anything is written."""
    check_export(name, directory, replace)
    directory = Path(directory or PRETRAINED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    weights = buffer.getvalue()
    digest = hashlib.sha256(weights).hexdigest()
    path = directory / f"{name}-{digest[:8]}.pt"
    manifest_path = directory / MANIFEST
    with _manifest_lock(directory):
        check_export(name, directory, replace)  # another process may have exported this name meanwhile
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
        manifest[name] = {"file": path.name, "architecture": architecture, "kwargs": _plain(kwargs),
                          "sha256": digest, "recipe": recipe, "data": _plain(data),
                          "date": _dt.date.today().isoformat(),
                          "validation": {k: round(float(v), 4) for k, v in validation.items()}}
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        new_file = not path.exists()
        tmp = _write_new(directory, f".{name}.pt.", weights)
        os.replace(tmp, path)
        try:
            tmp = _write_new(directory, f".{MANIFEST}.", text.encode("utf-8"))
            os.replace(tmp, manifest_path)
        except BaseException:
            if new_file:  # no manifest entry points at it
                with suppress(FileNotFoundError):
                    path.unlink()
            raise
    return path


def _plain(value: Any) -> Any:
    """JSON-ready copy (tuples -> lists, recursively)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
