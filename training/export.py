"""Export trained weights to `pretrained/<name>-<sha8>.pt` and record them in the manifest."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srnsz.neural.zoo import MANIFEST, PRETRAINED_DIR, sha256_of


def export_weights(model: nn.Module, name: str, architecture: str, kwargs: dict[str, Any], recipe: str,
                   data: dict[str, Any], validation: dict[str, float], directory: Path | None = None) -> Path:
    """Write `model`'s state dict (fp32, CPU) and add/replace manifest entry `name`; returns the weights path."""
    directory = Path(directory or PRETRAINED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    tmp = directory / f".{name}.pt.part"
    tmp.write_bytes(buffer.getvalue())
    digest = sha256_of(tmp)
    path = directory / f"{name}-{digest[:8]}.pt"
    os.replace(tmp, path)
    manifest_path = directory / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[name] = {"file": path.name, "architecture": architecture, "kwargs": _plain(kwargs), "sha256": digest,
                      "recipe": recipe, "data": _plain(data), "date": _dt.date.today().isoformat(),
                      "validation": {k: round(float(v), 4) for k, v in validation.items()}}
    tmp_manifest = manifest_path.with_suffix(".part")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_manifest, manifest_path)
    return path


def _plain(value: Any) -> Any:
    """JSON-ready copy (tuples -> lists, recursively)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
