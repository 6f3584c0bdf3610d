"""The ``srnsz-train`` command: the Hydra training entry point (training/train.py), with a clear error where the
``[train]`` extra (Hydra, matplotlib) is not installed."""

from __future__ import annotations

import importlib
import sys

TRAIN_EXTRA = ("hydra", "omegaconf", "matplotlib")


def missing_modules() -> list[str]:
    """The modules of the ``[train]`` extra that cannot be imported here."""
    missing = []
    for name in TRAIN_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def main() -> None:
    missing = missing_modules()
    if missing:
        print(f"srnsz-train: error: training needs {', '.join(missing)}: pip install 'srnsz[train]'", file=sys.stderr)
        sys.exit(2)
    from srnsz.training.train import main as train_main

    train_main()
