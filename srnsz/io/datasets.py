"""Whole NetCDF datasets to a Zarr store and back.

``compress_dataset``: every floating-point data variable of 1-4 dimensions goes through the srnsz Zarr codec
(:class:`srnsz.io.codec.SrnszZarr3`) with an absolute bound resolved per variable on its own valid values (its
``_FillValue``/``missing_value``/``valid_*`` and undeclared fills are missing, declared to the codec, and come
back exactly); every other variable (integers, strings, and the variables that locate the data, which are never
made lossy: coordinates, 1-D variables, their bounds) is copied losslessly by Zarr's default codec, once; attributes
come along. The groups of a NetCDF-4 file become Zarr groups of the same paths; a file holding what xarray cannot
read (compound, variable-length or enum types) is refused with the list of those, never converted without them.
The store's root attribute ``srnsz_netcdf`` records what Zarr would lose: the file format, and per group the unlimited
dimensions and the type of each numeric attribute.
``decompress_dataset`` writes such a store back to NetCDF, in its recorded format (a store without the record:
NETCDF3_64BIT when every type fits, else NETCDF4). Reading and writing go through xarray (values read raw,
``decode_cf=False``, so fills and packed integers pass through untouched); ``xarray.open_zarr`` reads the store
wherever srnsz is installed (the codec registers itself with Zarr).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnsz.bounds import ErrorBound
from srnsz.errors import InvalidInputError
from srnsz.io.cf import compressible, no_added_fill, rule_from_attrs
from srnsz.io.netcdf import (
    ENGINES,
    attr_types,
    file_format,
    group_contents,
    read_engine,
    typed_attrs,
    unlimited,
    writer_for,
)
from srnsz.io.outputs import write_atomically, write_folder
from srnsz.io.packed import float_scaling, stored_bound
from srnsz.missing import MissingRule, find_missing

CHUNK_BYTES = 64 << 20  # larger variables are cut along their first axes into chunks of about this size
# Attributes whose type must be the variable's own in NetCDF (Zarr's JSON attributes lose it), in stores without
# the record of their types.
TYPED_ATTRS = ("_FillValue", "missing_value", "valid_min", "valid_max", "valid_range")
RECORD = "srnsz_netcdf"  # the root attribute recording what Zarr loses of a NetCDF file


@dataclass(frozen=True)
class VariablePlan:
    """How one variable of a dataset is stored: lossy (srnsz, ``eb_abs`` on the stored values) or copied losslessly;
    ``requested``: the bound on the values CF readers see (``eb_abs`` unless scale_factor / add_offset scale them)."""

    name: str
    lossy: bool
    eb_abs: float = 0.0
    missing_points: int = 0
    fills: tuple[float, ...] = ()
    valid_range: tuple[float | None, float | None] = (None, None)
    requested: float | None = None


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
    # a scaled variable's bound is on the values CF readers see (stored x scale_factor + add_offset)
    requested, eb_abs = ((bound.resolve(values, found.mask),) * 2 if float_scaling(values.dtype, attrs) is None
                         else stored_bound(bound, values, found.mask, attrs))
    return VariablePlan(name, True, float(eb_abs), found.count, (*rule.fill_values, *found.detected),
                        (rule.valid_min, rule.valid_max), float(requested))


def compress_dataset(src: str | Path, dst: str | Path, eb: float, mode: str = "rel", predictor: str = "interp", *,
                     force: bool = False, on_variable: Callable[[VariablePlan, int, int], None] | None = None,
                     fill_value: float | Sequence[float] | None = None,
                     valid_range: Sequence[float | None] | None = None, detect_fills: bool = True,
                     **options: Any) -> list[VariablePlan]:
    """Convert NetCDF file ``src`` into Zarr store ``dst`` (a folder, written whole or not at all), every group of
    it (see the module's description).

    eb, mode: the bound per floating-point variable (``rel``: of that variable's valid range).
    fill_value, valid_range, detect_fills: added to each variable's declared missing values (see
    :func:`variable_rule`). ``options`` go to the predictor. ``on_variable(plan, done, total)`` is called
    after each lossy variable is written. Returns the plans of every variable (``group/name`` outside the root).
    """
    xr = _xarray()
    bound = ErrorBound(mode, eb)
    if bound.mode in ("psnr", "ssim"):  # each Zarr chunk is coded at an abs bound; none would check the goal
        raise InvalidInputError(f"a NetCDF-to-Zarr conversion takes abs or rel bounds, not {bound.mode}; nothing "
                                "written")
    extra = MissingRule.of(fill_value, valid_range, detect_fills)
    src = Path(src)
    fmt = file_format(src)
    contents = group_contents(src)
    if contents.uncarried:
        raise InvalidInputError(f"{src.name} holds what a Zarr store made through xarray cannot carry: "
                                f"{', '.join(contents.uncarried)}; nothing written")
    engine = read_engine(fmt)
    with ExitStack() as stack:
        try:
            opened = {g: stack.enter_context(xr.open_dataset(src, decode_cf=False, engine=engine,
                                                             group=None if g == "/" else g))
                      for g in contents.groups}
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"{src.name}: cannot read as NetCDF ({exc})") from None
        lossy = {g: _lossy_names(ds) for g, ds in opened.items()}
        total = sum(len(names) for names in lossy.values())
        plans = [VariablePlan(_qualified(g, str(n)), False) for g, ds in opened.items() for n in ds.variables
                 if n not in lossy[g]]
        record = {"format": fmt, "groups": {g: {"unlimited": unlimited(ds), "attrs": _attr_types_of(ds)}
                                            for g, ds in opened.items()}}

        def write(tmp: Path) -> None:
            done = 0
            for group, ds in opened.items():
                for plan in _write_group(ds, tmp, group, lossy[group], bound, extra, predictor, options):
                    plans.append(plan)
                    done += 1
                    if on_variable:
                        on_variable(plan, done, total)
            _set_record(tmp, record)

        write_folder(dst, force, write, is_zarr_store)
    return plans


def _qualified(group: str, name: str) -> str:
    """``name`` with its group's path (none in the root group)."""
    return name if group == "/" else f"{group.strip('/')}/{name}"


def _lossy_names(ds: Any) -> list[str]:
    """The variables of a group stored through the srnsz codec: floating-point data variables of 1-4 dimensions."""
    exact = _lossless_names(ds)
    return [str(n) for n, v in ds.variables.items()
            if n not in exact and v.dtype.kind == "f" and compressible(v.dtype, v.attrs, v.ndim)]


def _attr_types_of(ds: Any) -> dict[str, dict[str, str]]:
    """The types of a group's numeric attributes: ``""`` for the group's own, then per variable."""
    types = {"": attr_types(ds.attrs)}
    types.update({str(n): attr_types(v.attrs) for n, v in ds.variables.items() if attr_types(v.attrs)})
    return types


def _write_group(ds: Any, tmp: Path, group: str, lossy: list[str], bound: ErrorBound, extra: MissingRule,
                 predictor: str, options: dict[str, Any]) -> Iterator[VariablePlan]:
    """Write one group: lossless variables, coordinates and attributes first, then one lossy variable at a time
    (yielding each one's plan once written)."""
    xr = _xarray()
    from srnsz.io.codec import SrnszZarr3

    where = None if group == "/" else group.strip("/")
    base_encoding = {n: no_added_fill(v.attrs, v.dtype) for n, v in ds.variables.items() if n not in lossy}
    _to_zarr(ds.drop_vars(lossy), tmp, base_encoding, "w" if where is None else "a", where)
    for name in lossy:
        v = ds.variables[name]
        plan = plan_variable(_qualified(group, name), np.asarray(v.values), dict(v.attrs), bound, extra)
        missing: dict[str, Any] = {"fill_value": list(plan.fills), "detect_fills": False}
        if plan.valid_range != (None, None):
            missing["valid_range"] = list(plan.valid_range)
        codec = SrnszZarr3(eb=plan.eb_abs, mode="abs", predictor=predictor, options={**options, **missing})
        encoding = {name: {"serializer": codec, "compressors": None,
                           "chunks": _chunks(v.shape, v.dtype.itemsize), **no_added_fill(v.attrs, v.dtype)}}
        _to_zarr(xr.Dataset({name: v}, attrs=ds.attrs), tmp, encoding, "a", where)  # "a" rewrites the attrs
        yield plan


def _to_zarr(ds: Any, path: Path, encoding: dict[str, Any], mode: str, group: str | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that the srnsz codec is not in the v3 specification
        ds.to_zarr(path, mode=mode, encoding=encoding, zarr_format=3, consolidated=False, group=group)


def _set_record(store: Path, record: dict[str, Any]) -> None:
    import zarr

    zarr.open_group(store, mode="r+").attrs[RECORD] = record


@dataclass(frozen=True)
class WrittenDataset:
    """What :func:`decompress_dataset` wrote: the variables (``group/name`` outside the root), the NetCDF format,
    and why that is not the file's original format (empty when it is)."""

    variables: list[str]
    format: str
    note: str = ""


def decompress_dataset(src: str | Path, dst: str | Path, *, force: bool = False,
                       on_variable: Callable[[str], None] | None = None) -> WrittenDataset:
    """Write Zarr store ``src`` (made by :func:`compress_dataset`, or any Zarr store) as NetCDF file ``dst``, every
    group of it, in the format, unlimited dimensions and attribute types its record keeps."""
    xr = _xarray()
    groups, record = _store_layout(src)
    variables: list[str] = []
    with ExitStack() as stack:
        loaded = {}
        for group in groups:
            try:
                ds = stack.enter_context(xr.open_zarr(src, decode_cf=False, consolidated=False,
                                                      group=None if group == "/" else group.strip("/")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{src}: cannot read as a Zarr store ({exc})") from None
            loaded[group] = _restored(ds.load(), (record or {}).get("groups", {}).get(group))
            variables += [_qualified(group, str(n)) for n in loaded[group].variables]
            if on_variable:
                for name in loaded[group].variables:
                    on_variable(_qualified(group, str(name)))
        fmt = record["format"] if record else ("NETCDF3_64BIT" if len(groups) == 1 and all(
            v.dtype.kind in "fS" or v.dtype in (np.int8, np.int16, np.int32)
            for v in loaded["/"].variables.values()) else "NETCDF4")
        writer = writer_for(fmt, groups=len(groups) > 1)

        def write(tmp: Path) -> None:
            for number, (group, ds) in enumerate(loaded.items()):
                unlimited_dims = (record or {}).get("groups", {}).get(group, {}).get("unlimited", [])
                ds.to_netcdf(tmp, mode="w" if number == 0 else "a", group=None if group == "/" else group,
                             format=writer.format, engine=writer.engine, unlimited_dims=unlimited_dims,
                             encoding={n: no_added_fill(v.attrs, v.dtype) for n, v in ds.variables.items()})

        write_atomically(dst, write, force)
    return WrittenDataset(variables, writer.format, writer.note)


def _store_layout(src: str | Path) -> tuple[list[str], dict[str, Any] | None]:
    """(the groups of a Zarr store, ``/`` first and parents before children; its ``srnsz_netcdf`` record or None)."""
    try:
        import zarr

        root = zarr.open_group(src, mode="r")
    except ImportError:
        raise InvalidInputError("datasets need xarray and zarr (pip install xarray zarr)") from None
    except Exception as exc:  # zarr raises many kinds for a folder that is no group
        raise InvalidInputError(f"{src}: cannot read as a Zarr store ({exc})") from None
    groups = ["/"]

    def walk(group: Any, path: str) -> None:
        for name, sub in sorted(group.groups()):
            groups.append(f"{path}/{name}")
            walk(sub, f"{path}/{name}")

    walk(root, "")
    record = root.attrs.get(RECORD)
    if record is None:
        return groups, None
    if not (isinstance(record, dict) and (record.get("format") in ENGINES or record.get("format") == "HDF5")
            and isinstance(record.get("groups"), dict)):
        raise InvalidInputError(f"{src}: its {RECORD} attribute is garbled")
    return groups, record


def _restored(ds: Any, kept: dict[str, Any] | None) -> Any:
    """A group read from Zarr with what its record keeps: its attributes' types (a store without a record: the fill
    and range attributes take their variable's type) and no record attribute."""
    ds.attrs.pop(RECORD, None)
    types = kept.get("attrs", {}) if isinstance(kept, dict) else None
    if types is not None:
        ds.attrs = typed_attrs(ds.attrs, types.get("", {}))
    for name, v in ds.variables.items():
        if types is not None:
            v.attrs = typed_attrs(v.attrs, types.get(str(name), {}))
            continue
        for key in TYPED_ATTRS:
            if key in v.attrs:
                v.attrs[key] = np.asarray(v.attrs[key], dtype=v.dtype)[()]
    return ds


def is_zarr_store(path: Path) -> bool:
    """Whether folder ``path`` is a Zarr store (v3 or v2 metadata at its top)."""
    return (path / "zarr.json").exists() or (path / ".zgroup").exists() or (path / ".zarray").exists()
