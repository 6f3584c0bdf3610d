"""Whole NetCDF datasets to a Zarr store and back.

``compress_dataset``: every floating-point data variable of 1-4 dimensions goes through the srnsz Zarr codec
(:class:`srnsz.io.codec.SrnszZarr3`) with an absolute bound resolved per variable on its own valid values (its
``_FillValue``/``missing_value``/``valid_*`` and undeclared fills are missing, declared to the codec, and come
back exactly); every other variable (integers, strings, and the variables that locate the data, which are never
made lossy: coordinates, 1-D variables, their bounds) is copied losslessly by Zarr's default codec; attributes
come along.
``decompress_dataset`` writes such a store back to NetCDF. Reading and writing go through xarray (values read
raw, ``decode_cf=False``, so fills and packed integers pass through untouched); ``xarray.open_zarr`` reads the
store wherever srnsz is installed (the codec registers itself with Zarr).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnsz.bounds import ErrorBound
from srnsz.errors import InvalidInputError
from srnsz.io.cf import HDF5_SUFFIXES, compressible, no_added_fill, rule_from_attrs
from srnsz.io.outputs import write_atomically, write_folder
from srnsz.missing import MissingRule, find_missing

CHUNK_BYTES = 64 << 20  # larger variables are cut along their first axes into chunks of about this size
# Attributes whose type must be the variable's own in NetCDF (Zarr's JSON attributes lose it).
TYPED_ATTRS = ("_FillValue", "missing_value", "valid_min", "valid_max", "valid_range")


@dataclass(frozen=True)
class VariablePlan:
    """How one variable of a dataset is stored: lossy (srnsz, ``eb_abs``) or copied losslessly."""

    name: str
    lossy: bool
    eb_abs: float = 0.0
    missing_points: int = 0
    fills: tuple[float, ...] = ()
    valid_range: tuple[float | None, float | None] = (None, None)


def _xarray() -> Any:
    try:
        import xarray as xr
    except ImportError:
        raise InvalidInputError("datasets need xarray and zarr (pip install xarray zarr)") from None
    return xr


def _lossless_names(ds: Any) -> set[str]:
    """Variables that locate the data, so stay exact: dimension coordinates, variables named in a
    ``coordinates`` attribute, every 1-D variable (lat, lon, depth, time under another name) and their bounds."""
    names = {str(d) for d in ds.dims if d in ds.variables}
    names |= {str(n) for n, v in ds.variables.items() if v.ndim <= 1}
    for v in ds.variables.values():
        names |= {n for n in str(v.attrs.get("coordinates", "")).split() if n in ds.variables}
    for name in list(names):
        bounds = ds.variables[name].attrs.get("bounds")
        if isinstance(bounds, str) and bounds in ds.variables:
            names.add(bounds)
    return names


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Whole variable, or slabs along the leading axes of about CHUNK_BYTES."""
    chunks = list(shape)
    for axis in range(len(shape)):
        while chunks[axis] > 1 and int(np.prod(chunks)) * itemsize > CHUNK_BYTES:
            chunks[axis] = (chunks[axis] + 1) // 2
    return tuple(chunks)


def variable_rule(attrs: dict[str, Any], extra: MissingRule) -> MissingRule:
    """A variable's missing-value rule: its attributes' declarations plus ``extra`` (the user's fills; the
    user's valid range, when given, replaces the attributes'; detection as the user says)."""
    declared = rule_from_attrs(attrs)
    low, high = ((extra.valid_min, extra.valid_max) if extra.valid_min is not None or extra.valid_max is not None
                 else (declared.valid_min, declared.valid_max))
    return MissingRule((*declared.fill_values, *extra.fill_values), low, high, extra.detect)


def plan_variable(name: str, values: np.ndarray, attrs: dict[str, Any], bound: ErrorBound,
                  extra: MissingRule | None = None) -> VariablePlan:
    """The absolute bound and fills of one floating-point variable (relative bounds on its valid values)."""
    rule = variable_rule(attrs, extra or MissingRule())
    found = find_missing(values, rule)
    eb_abs = bound.resolve(values, found.mask)
    return VariablePlan(name, True, float(eb_abs), found.count, (*rule.fill_values, *found.detected),
                        (rule.valid_min, rule.valid_max))


def compress_dataset(src: str | Path, dst: str | Path, eb: float, mode: str = "rel", predictor: str = "interp", *,
                     force: bool = False, on_variable: Callable[[VariablePlan, int, int], None] | None = None,
                     fill_value: float | Sequence[float] | None = None,
                     valid_range: Sequence[float | None] | None = None, detect_fills: bool = True,
                     **options: Any) -> list[VariablePlan]:
    """Convert NetCDF file ``src`` into Zarr store ``dst`` (a folder, written whole or not at all).

    eb, mode: the bound per floating-point variable (``rel``: of that variable's valid range).
    fill_value, valid_range, detect_fills: added to each variable's declared missing values (see
    :func:`variable_rule`). ``options`` go to the predictor. ``on_variable(plan, done, total)`` is called
    after each lossy variable is written. Returns the plans of every variable.
    """
    xr = _xarray()
    from srnsz.io.codec import SrnszZarr3

    bound = ErrorBound(mode, eb)
    extra = MissingRule.of(fill_value, valid_range, detect_fills)
    src = Path(src)
    engine = "h5netcdf" if src.suffix.lower() in HDF5_SUFFIXES else None
    try:
        ds = xr.open_dataset(src, decode_cf=False, engine=engine)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{src.name}: cannot read as NetCDF ({exc})") from None
    with ds:
        exact = _lossless_names(ds)
        lossy = [str(n) for n, v in ds.variables.items()
                 if n not in exact and v.dtype.kind == "f" and compressible(v.dtype, v.attrs, v.ndim)]
        base_encoding = {n: no_added_fill(v.attrs, v.dtype) for n, v in ds.variables.items() if n not in lossy}
        plans = [VariablePlan(str(n), False) for n in ds.variables if n not in lossy]

        def write(tmp: Path) -> None:
            # Lossless variables, coordinates and attributes first, then one lossy variable at a time.
            _to_zarr(ds.drop_vars(lossy), tmp, base_encoding, "w")
            for done, name in enumerate(lossy, 1):
                v = ds.variables[name]
                plan = plan_variable(name, np.asarray(v.values), dict(v.attrs), bound, extra)
                missing: dict[str, Any] = {"fill_value": list(plan.fills), "detect_fills": False}
                if plan.valid_range != (None, None):
                    missing["valid_range"] = list(plan.valid_range)
                codec = SrnszZarr3(eb=plan.eb_abs, mode="abs", predictor=predictor, options={**options, **missing})
                encoding = {name: {"serializer": codec, "compressors": None,
                                   "chunks": _chunks(v.shape, v.dtype.itemsize), **no_added_fill(v.attrs, v.dtype)}}
                _to_zarr(xr.Dataset({name: v}, attrs=ds.attrs), tmp, encoding, "a")  # "a" rewrites the attrs
                plans.append(plan)
                if on_variable:
                    on_variable(plan, done, len(lossy))

        write_folder(dst, force, write, is_zarr_store)
    return plans


def _to_zarr(ds: Any, path: Path, encoding: dict[str, Any], mode: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that the srnsz codec is not in the v3 specification
        ds.to_zarr(path, mode=mode, encoding=encoding, zarr_format=3, consolidated=False)


def decompress_dataset(src: str | Path, dst: str | Path, *, force: bool = False,
                       on_variable: Callable[[str], None] | None = None) -> list[str]:
    """Write Zarr store ``src`` (made by :func:`compress_dataset`, or any Zarr store) as NetCDF file ``dst``;
    returns the variable names."""
    xr = _xarray()

    try:
        ds = xr.open_zarr(src, decode_cf=False, consolidated=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{src}: cannot read as a Zarr store ({exc})") from None
    with ds:
        loaded = ds.load()
        encoding = {}
        for name, v in loaded.variables.items():
            for key in TYPED_ATTRS:
                if key in v.attrs:
                    v.attrs[key] = np.asarray(v.attrs[key], dtype=v.dtype)[()]
            encoding[name] = no_added_fill(v.attrs, v.dtype)
            if on_variable:
                on_variable(str(name))
        classic = all(v.dtype.kind in "fS" or v.dtype in (np.int8, np.int16, np.int32)
                      for v in loaded.variables.values())

        def write(tmp: Path) -> None:
            loaded.to_netcdf(tmp, format="NETCDF3_64BIT" if classic else "NETCDF4",
                             engine="scipy" if classic else "h5netcdf", encoding=encoding)

        write_atomically(dst, write, force)
    return [str(n) for n in loaded.variables]


def is_zarr_store(path: Path) -> bool:
    """Whether folder ``path`` is a Zarr store (v3 or v2 metadata at its top)."""
    return (path / "zarr.json").exists() or (path / ".zgroup").exists() or (path / ".zarray").exists()
