"""Where the shipped folders are: ``configs/`` (Hydra recipes) and ``pretrained/`` (weights + manifest).

They are top-level folders of the repository. In a checkout or an editable install they are read there; a wheel
(``pip install .``) carries copies inside the package (``srnsz/_assets/``, put there by setup.py's build step).
"""

from __future__ import annotations

from pathlib import Path

from srnsz.errors import SrnszError

SHIPPED = ("configs", "pretrained")


def asset_dir(name: str) -> Path:
    """The shipped folder ``name`` (one of SHIPPED): inside the installed package, else beside it in a checkout."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped folder {name!r}; one of {SHIPPED}")
    package = Path(__file__).resolve().parent
    for candidate in (package / "_assets" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise SrnszError(f"srnsz's {name}/ folder is missing from this installation (looked in {package / '_assets'} "
                     f"and {package.parent}); reinstall srnsz")
