"""The compiled parts of srnsz (C files built by ``pip install``), loaded with ctypes: no Python objects cross."""

from __future__ import annotations

import ctypes
import importlib.util

from srnsz.errors import SrnszError


def load_library(module: str, source: str) -> ctypes.CDLL:
    """The shared library of extension ``module`` (e.g. ``srnsz.coding._mixing``), built from ``source``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SrnszError(f"srnsz's compiled code ({source}) is not built; reinstall srnsz with pip, which compiles it "
                         "(it needs a C compiler)")
    return ctypes.CDLL(spec.origin)


def load_function(module: str, source: str, symbol: str, argtypes: list, restype: type | None) -> ctypes._CFuncPtr:
    """Function ``symbol`` of extension ``module`` (see :func:`load_library`) with its ctypes signature."""
    function = getattr(load_library(module, source), symbol)
    function.argtypes, function.restype = argtypes, restype
    return function
