"""CF variables of NetCDF and HDF5 files: read one with what makes it a variable, and write it back.

Reading (:func:`read_variable`) gives the values as stored (fill values included, bit for bit), the missing-value
rule its attributes declare (``_FillValue``, ``missing_value``, ``valid_min``/``valid_max``/``valid_range``), and
a :class:`VariableMeta`: name, dimension names, attributes, the coordinate variables it uses (its dimensions'
coordinates, those named by its ``coordinates`` attribute, and their ``bounds``) and the file's attributes. A CF
packed variable (integers with ``scale_factor``/``add_offset``) is unpacked to floats as xarray does, its missing
values becoming NaN, and the packing is recorded so writing it back packs it again.

The metadata travels in a stream as two small lossless sections (``VMET``: zstd JSON; ``VCRD``: zstd of the
coordinate arrays' bytes), so ``srnsz decompress x.srnsz -o back.nc`` writes a file that can replace the original
variable. NetCDF files are read and written through xarray (NetCDF-3 with scipy, NetCDF-4 with h5netcdf);
plain HDF5 datasets through h5py. This module imports neither until a file is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.format.metadata import COORD_KINDS, Coordinate, Packing, VariableMeta
from srnsz.io import netcdf
from srnsz.missing import MissingRule

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf")
HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
@dataclass(frozen=True)
class CFField:
    """A variable read from a file: values (float, as compressed), its missing-value rule, its metadata, and
    notes for the user (unpacking, undeclared choices)."""

    data: np.ndarray
    rule: MissingRule
    meta: VariableMeta
    notes: tuple[str, ...] = ()
    packed: np.ndarray | None = None  # a packed variable's integers as stored (srnsz.io.packed checks against them)


def attr_numbers(attrs: dict[str, Any], key: str) -> list[float]:
    """The finite numbers of attribute ``key`` (none when absent or not numeric, e.g. missing_value='N/A',
    which no floating-point value can equal)."""
    try:
        values = np.asarray(attrs[key], dtype=np.float64).ravel() if key in attrs else np.zeros(0)
    except (TypeError, ValueError, OverflowError):
        return []
    return [float(v) for v in values if np.isfinite(v)]


def rule_from_attrs(attrs: dict[str, Any]) -> MissingRule:
    """The missing values a variable's CF attributes declare (fills, valid range); detection stays on."""
    fills = attr_numbers(attrs, "_FillValue") + attr_numbers(attrs, "missing_value")
    bounds = attr_numbers(attrs, "valid_range")
    low, high = (bounds[0], bounds[1]) if len(bounds) == 2 and bounds[0] <= bounds[1] else (None, None)
    low = next(iter(attr_numbers(attrs, "valid_min")), low)
    high = next(iter(attr_numbers(attrs, "valid_max")), high)
    if low is not None and high is not None and low > high:
        low = high = None  # an empty range declares nothing usable
    return MissingRule(tuple(fills), low, high)


def is_packed(dtype: np.dtype, attrs: dict[str, Any]) -> bool:
    """Whether a variable of ``dtype`` with these attributes is CF-packed: integers with scale_factor/add_offset."""
    return dtype.kind in "iu" and ("scale_factor" in attrs or "add_offset" in attrs)


def is_unsigned(attrs: dict[str, Any]) -> bool:
    """Whether the NetCDF convention ``_Unsigned = "true"`` makes readers take the stored integers as unsigned
    (which srnsz does not unpack: such variables are refused, and a dataset's are copied as they are)."""
    value = attrs.get("_Unsigned", "")
    value = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return value.strip().lower() == "true"


def _open_netcdf(path: Path, group: str = "/") -> tuple[Any, str]:
    """(the dataset of ``group`` opened by xarray with its values raw, the file's format)."""
    try:
        import xarray as xr
    except ImportError:
        raise InvalidInputError(f"{path.name}: NetCDF input needs xarray (pip install xarray scipy h5netcdf)") \
            from None
    fmt = netcdf.file_format(path)
    if group != "/" and fmt.startswith("NETCDF3"):
        raise InvalidInputError(f"{path.name} is {fmt}, which has no groups (no {group!r})")
    try:
        return xr.open_dataset(path, decode_cf=False, engine=netcdf.read_engine(fmt),
                               group=None if group == "/" else group), fmt
    except ImportError as exc:
        raise InvalidInputError(f"{path.name}: reading it needs {exc.name} (pip install scipy h5netcdf)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path.name}: cannot read {'group ' + group + ' ' if group != '/' else ''}as NetCDF "
                                f"({exc})") from None


def _split(var: str | None) -> tuple[str, str | None]:
    """(group, name) of a variable given as ``name`` or ``group/.../name``."""
    if var is None or "/" not in var.strip("/"):
        return "/", None if var is None else var.strip("/")
    group, name = var.strip("/").rsplit("/", 1)
    return "/" + group, name


def _compressible_names(path: Path) -> list[str]:
    """The variables srnsz can compress in every group of ``path`` (``group/name`` outside the root)."""
    names = []
    for group in netcdf.group_contents(path).groups:
        try:
            ds, _ = _open_netcdf(path, group)
        except InvalidInputError:
            continue
        with ds:
            prefix = "" if group == "/" else group.strip("/") + "/"
            names += [prefix + str(k) for k, v in ds.variables.items() if compressible(v.dtype, v.attrs, v.ndim)]
    return sorted(names)


def compressible(dtype: np.dtype, attrs: dict[str, Any], ndim: int) -> bool:
    """Whether srnsz can compress a variable: floating point, or CF-packed integers, of 1 to 4 dimensions."""
    return 1 <= ndim <= 4 and (dtype.kind == "f" and dtype.itemsize in (4, 8) or
                               is_packed(dtype, attrs) and not is_unsigned(attrs))


def read_variable(path: str | Path, var: str | None) -> CFField:
    """Variable ``var`` of a NetCDF (through xarray) or HDF5 (through h5py) file, with its metadata."""
    path = Path(path)
    if path.suffix.lower() in HDF5_SUFFIXES:
        return _read_hdf5(path, var)
    group, name = _split(var)
    try:
        ds, fmt = _open_netcdf(path, group)
    except InvalidInputError:
        if group == "/":
            raise
        ds = None
    if ds is None or name is None or name not in ds.variables:
        if ds is not None:
            ds.close()
        names = _compressible_names(path)
        raise InvalidInputError(f"{path.name}: give --var, one of {', '.join(names) or '(none)'}")
    with ds:
        v = ds.variables[name]
        if not compressible(v.dtype, v.attrs, v.ndim):
            why = (f"{v.ndim} dimensions (srnsz takes 1 to 4)" if not 1 <= v.ndim <= 4
                   else f"its packed {v.dtype} integers are read as unsigned (_Unsigned), which srnsz does not unpack"
                   if is_packed(v.dtype, v.attrs) else f"its values are {v.dtype} without CF scale_factor/add_offset "
                   "packing")
            names = _compressible_names(path)
            raise InvalidInputError(f"{path.name}: variable {var!r} cannot be compressed: {why}; "
                                    f"floating-point variables: {', '.join(names) or '(none)'}")
        coords = _coordinates(ds, name)
        used = set(v.dims).union(*(c.dims for c in coords))
        meta = VariableMeta(name, tuple(str(d) for d in v.dims), dict(v.attrs), coords, dict(ds.attrs), fmt,
                            unlimited=tuple(d for d in netcdf.unlimited(ds) if d in used), group=group)
        if not is_packed(v.dtype, v.attrs):
            return CFField(np.asarray(v.values), rule_from_attrs(v.attrs), meta)
        return unpack(name, np.asarray(v.values), dict(v.attrs), meta)


def declared_rule(path: str | Path, var: str | None) -> MissingRule:
    """The missing-value rule of variable ``var``'s attributes, without reading its values (packed variables
    declare none: unpacking turns their missing values into NaN)."""
    dtype, attrs = declared_attrs(path, var)
    return MissingRule() if is_packed(dtype, attrs) else rule_from_attrs(attrs)


def declared_attrs(path: str | Path, var: str | None) -> tuple[np.dtype, dict[str, Any]]:
    """(stored dtype, attributes) of variable ``var`` without reading its values; (float32, {}) where the file or
    the variable cannot be opened (reading it says why)."""
    path = Path(path)
    if path.suffix.lower() in HDF5_SUFFIXES:
        import h5py

        with h5py.File(path, "r") as h5:
            attrs = dict(h5[var].attrs) if var in h5 else {}
            dtype = h5[var].dtype if var in h5 else np.dtype("f4")
    else:
        group, name = _split(var)
        try:
            ds, _ = _open_netcdf(path, group)
        except InvalidInputError:
            return np.dtype("f4"), {}
        with ds:
            if name not in ds.variables:
                return np.dtype("f4"), {}
            attrs, dtype = dict(ds.variables[name].attrs), ds.variables[name].dtype
    return np.dtype(dtype), attrs


def unpack(name: str, raw: np.ndarray, attrs: dict[str, Any], meta: VariableMeta) -> CFField:
    """A CF-packed variable as floats (p * scale_factor + add_offset, float32 when the factors and a <= 16-bit
    integer allow, else float64), its missing values (fills, values outside the valid range in packed units)
    as NaN; the packing and the raw integers of the missing points are recorded, so writing back restores them."""
    scale, offset = attrs.get("scale_factor", 1.0), attrs.get("add_offset", 0.0)
    numbers = attr_numbers({"scale_factor": scale}, "scale_factor") + attr_numbers({"add_offset": offset}, "add_offset")
    if len(numbers) != 2 or numbers[0] == 0:
        raise InvalidInputError(f"variable {name!r}: scale_factor {scale!r} / add_offset {offset!r} are not a usable "
                                "CF packing")
    factors = np.result_type(np.asarray(scale).dtype, np.asarray(offset).dtype)
    mask = rule_from_attrs(attrs).declared_mask(raw.astype(np.float64))
    exact = raw.astype(np.float64) * numbers[0] + numbers[1]
    decoded = exact.astype(np.float32)
    # float32 where the factors are (xarray's choice), unless it cannot tell neighbouring integers apart
    if not (factors == np.float32 and raw.dtype.itemsize <= 2 and (
            np.abs(decoded[~mask] - exact[~mask]) <= 0.25 * abs(numbers[0])).all()):
        decoded = exact
    decoded[mask] = np.nan
    packing = Packing(raw.dtype.newbyteorder("<").str if raw.dtype.byteorder != "|" else raw.dtype.str,
                      numbers[0], numbers[1])
    note = (f"{name} is packed ({raw.dtype} x scale_factor {packing.scale_factor:.6g} + add_offset "
            f"{packing.add_offset:.6g}): unpacked to {decoded.dtype}, missing values as NaN (their integers are "
            f"kept); the bound is taken in whole packing steps ({packing.step:.3g}) so that the values CF readers "
            f"unpack from the re-packed file hold it, and a bound below one step keeps the packed integers exactly")
    kept = np.ascontiguousarray(raw[mask])
    return CFField(decoded, MissingRule(), VariableMeta(meta.name, meta.dims, dict(attrs), meta.coords,
                                                       meta.global_attrs, meta.file_format, packing, kept), (note,),
                   raw)


def _coordinates(ds: Any, var: str) -> tuple[Coordinate, ...]:
    """The coordinate variables ``var`` uses: its dimensions', its ``coordinates`` attribute's, their bounds."""
    v = ds.variables[var]
    wanted = [d for d in v.dims if d in ds.variables]
    wanted += [n for n in str(v.attrs.get("coordinates", "")).split() if n in ds.variables]
    for name in list(wanted):
        bounds = ds.variables[name].attrs.get("bounds")
        if isinstance(bounds, str) and bounds in ds.variables:
            wanted.append(bounds)
    out, seen = [], set()
    for name in wanted:
        if name in seen or name == var:
            continue
        seen.add(name)
        c = ds.variables[name]
        char_dim = None
        if c.dtype == np.dtype("S1") and c.ndim >= 1:  # NetCDF-3 strings: characters along a last dimension
            import xarray as xr

            char_dim, c = str(c.dims[-1]), xr.coding.strings.CharacterArrayCoder().decode(c, name=name)
        values = np.asarray(c.values)
        if values.dtype.kind == "O":
            values = values.astype(str)
        if values.dtype.kind in COORD_KINDS:
            out.append(Coordinate(str(name), tuple(str(d) for d in c.dims), dict(c.attrs), values, char_dim))
    return tuple(out)


def _read_hdf5(path: Path, var: str | None) -> CFField:
    try:
        import h5py
    except ImportError:
        raise InvalidInputError(f"{path.name}: HDF5 input needs h5py (pip install h5py)") from None
    try:
        with h5py.File(path, "r") as h5:
            names: list[str] = []
            h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and compressible(
                o.dtype, dict(o.attrs), o.ndim) else None)
            if var not in names:
                raise InvalidInputError(f"{path.name}: give --var, one of {', '.join(sorted(names)) or '(none)'}")
            dataset = h5[var]
            attrs = {k: v for k, v in dataset.attrs.items() if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
            dims = tuple(f"dim_{a}" for a in range(dataset.ndim))
            meta = VariableMeta(var, dims, attrs, (), dict(h5.attrs), "HDF5")
            values = np.asarray(dataset[()])
    except OSError as exc:
        raise InvalidInputError(f"{path.name}: cannot read as HDF5 ({exc})") from None
    if is_packed(values.dtype, attrs):
        return unpack(var, values, attrs, meta)
    return CFField(values, rule_from_attrs(attrs), meta)


def repack_limits(meta: VariableMeta) -> tuple[int, int]:
    """The integers :func:`repack` may write for a valid value of a packed variable: its integer type's range within
    its valid range, the fill values at either end left out."""
    assert meta.packing is not None
    dtype = np.dtype(meta.packing.dtype)
    fills = [int(v) for v in attr_numbers(meta.attrs, "_FillValue") + attr_numbers(meta.attrs, "missing_value")]
    rule = rule_from_attrs(meta.attrs)
    low = max(np.iinfo(dtype).min, int(np.ceil(rule.valid_min)) if rule.valid_min is not None else -(2**63))
    high = min(np.iinfo(dtype).max, int(np.floor(rule.valid_max)) if rule.valid_max is not None else 2**63 - 1)
    while low in fills and low < high:
        low += 1
    while high in fills and high > low:
        high -= 1
    return low, high


def repack(data: np.ndarray, meta: VariableMeta) -> np.ndarray:
    """The packed integers of a packed variable's floats: rounded to the nearest step, clipped to the integer
    type and its valid range (never onto a fill value at an end of it), missing points (NaN) given back their
    recorded raw integers (else the variable's first fill value)."""
    p = meta.packing
    assert p is not None
    dtype = np.dtype(p.dtype)
    fills = [int(v) for v in attr_numbers(meta.attrs, "_FillValue") + attr_numbers(meta.attrs, "missing_value")]
    low, high = repack_limits(meta)
    missing = ~np.isfinite(data)
    with np.errstate(invalid="ignore"):
        packed = np.clip(np.rint((data.astype(np.float64) - p.add_offset) / p.scale_factor), low, high)
    packed = np.where(missing, 0, packed).astype(dtype)
    if missing.any():
        kept = meta.packed_missing
        if kept is not None and kept.size == int(missing.sum()):
            packed[missing] = kept
        elif fills:
            packed[missing] = fills[0]
        else:
            raise InvalidInputError(f"variable {meta.name!r} has missing values but no fill value to pack them as")
    return packed


def no_added_fill(attrs: dict[str, Any], dtype: np.dtype) -> dict[str, Any]:
    """xarray encoding that keeps a floating variable without ``_FillValue`` without one (xarray would add a NaN
    fill the original did not have); {} otherwise."""
    return {"_FillValue": None} if np.dtype(dtype).kind in "fc" and "_FillValue" not in attrs else {}


def write_variable(path: Path, data: np.ndarray, meta: VariableMeta | None, var: str | None) -> str:
    """Write ``data`` to ``path`` (.nc / .h5 by suffix) as variable ``var`` (default the metadata's name, else
    ``data``), with the metadata's dimension names, attributes, coordinates, packing, group, unlimited dimensions and
    file format when given. Returns a note when the file cannot be of the recorded format (empty otherwise)."""
    name = var or (meta.name if meta else "data")
    if meta is None:
        meta = VariableMeta(name, tuple(f"dim_{a}" for a in range(data.ndim)), file_format="NETCDF3_64BIT")
    if len(meta.dims) != data.ndim:
        raise StreamFormatError(f"the stream's dimension names {meta.dims} do not fit its shape {data.shape}")
    if name in {c.name for c in meta.coords}:  # the coordinate would take the variable's place in the file
        raise InvalidInputError(f"{name!r} is the name of one of the variable's coordinates; give --var another name")
    sizes = dict(zip(meta.dims, data.shape))
    for c in meta.coords:
        if len(c.dims) != c.values.ndim or any(sizes.setdefault(d, n) != n for d, n in zip(c.dims, c.values.shape)):
            raise StreamFormatError(f"the stream's coordinate {c.name!r} does not fit the variable's dimensions")
    values = repack(data, meta) if meta.packing is not None else data
    if path.suffix.lower() in HDF5_SUFFIXES or meta.file_format == "HDF5" and path.suffix.lower() not in (
            NETCDF_SUFFIXES):
        _write_hdf5(path, values, meta, name)
        return ""
    if not name or "/" in name:  # (the group a variable is written into is the one recorded in its metadata)
        raise InvalidInputError(f"{name!r} is not a NetCDF variable name (no '/'; the stream's group is kept)")
    import xarray as xr

    # Values are written as they are stored (fills and packed integers included), attributes as they were.
    variables = {name: xr.Variable(meta.dims, values, dict(meta.attrs))}
    encodings: dict[str, Any] = {name: no_added_fill(meta.attrs, values.dtype)}
    for c in meta.coords:
        variables[c.name] = xr.Variable(c.dims, c.values, dict(c.attrs))
        encodings[c.name] = no_added_fill(c.attrs, c.values.dtype)
        if c.char_dim is not None:
            encodings[c.name]["char_dim_name"] = c.char_dim
    try:
        dataset = xr.Dataset(variables, attrs=dict(meta.global_attrs))
        writer = netcdf.writer_for(meta.file_format, groups=meta.group != "/")
        if writer.format.startswith("NETCDF3") and not all(
                v.dtype.kind in "SUf" or v.dtype in (np.int8, np.int16, np.int32, np.uint8)
                for v in dataset.variables.values()):
            writer = netcdf.Writer("h5netcdf", "NETCDF4", f"written as NETCDF4, not {meta.file_format}: a "
                                   "coordinate's type does not fit it")
        dataset.to_netcdf(path, format=writer.format, engine=writer.engine, encoding=encodings,
                          group=None if meta.group == "/" else meta.group,
                          unlimited_dims=[d for d in meta.unlimited if d in dataset.dims])
    except ImportError as exc:
        raise InvalidInputError(f"writing {path.name} needs {exc.name} (pip install scipy h5netcdf)") from None
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise StreamFormatError(f"the stream's variable metadata cannot be written to {path.name} ({exc})") from None
    return writer.note


def _write_hdf5(path: Path, values: np.ndarray, meta: VariableMeta, name: str) -> None:
    import h5py

    try:
        with h5py.File(path, "w") as h5:
            for k, v in meta.global_attrs.items():
                h5.attrs[k] = v
            dataset = h5.create_dataset(name, data=values)
            for k, v in meta.attrs.items():
                dataset.attrs[k] = v
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise StreamFormatError(f"the stream's variable metadata cannot be written to {path.name} ({exc})") from None
