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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srnsz import lossless
from srnsz.errors import InvalidInputError, StreamFormatError
from srnsz.missing import MissingRule

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf")
HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
# Attributes that describe the stored encoding, not the values: xarray wants them in `encoding` when writing.
ENCODING_ATTRS = ("_FillValue", "missing_value", "scale_factor", "add_offset")
COORD_KINDS = "biufSU"
MAX_META_BYTES = 64 << 20


@dataclass(frozen=True)
class Packing:
    """CF packing of a variable: stored as ``dtype`` integers p, meaning p * scale_factor + add_offset."""

    dtype: str
    scale_factor: float = 1.0
    add_offset: float = 0.0

    @property
    def step(self) -> float:
        return abs(self.scale_factor)


@dataclass(frozen=True)
class Coordinate:
    """A coordinate variable written beside the variable: name, dimension names, attributes, values."""

    name: str
    dims: tuple[str, ...]
    attrs: dict[str, Any]
    values: np.ndarray


@dataclass(frozen=True)
class VariableMeta:
    """What writing a variable back to its kind of file needs, besides its values."""

    name: str
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    coords: tuple[Coordinate, ...] = ()
    global_attrs: dict[str, Any] = field(default_factory=dict)
    file_format: str = "NETCDF4"  # NETCDF3_CLASSIC, NETCDF3_64BIT, NETCDF4 or HDF5
    packing: Packing | None = None

    def to_sections(self) -> dict[str, bytes]:
        """Sections ``VMET`` (JSON) and ``VCRD`` (coordinate bytes), both zstd."""
        blobs, coords, offset = [], [], 0
        for c in self.coords:
            raw = np.ascontiguousarray(c.values, c.values.dtype.newbyteorder("<")
                                       if c.values.dtype.byteorder not in "|" else c.values.dtype).tobytes()
            coords.append({"name": c.name, "dims": list(c.dims), "attrs": _attrs_json(c.attrs),
                           "dtype": c.values.dtype.newbyteorder("<").str if c.values.dtype.byteorder != "|"
                           else c.values.dtype.str, "shape": list(c.values.shape), "offset": offset,
                           "nbytes": len(raw)})
            blobs.append(raw)
            offset += len(raw)
        record = {"name": self.name, "dims": list(self.dims), "attrs": _attrs_json(self.attrs), "coords": coords,
                  "global_attrs": _attrs_json(self.global_attrs), "file_format": self.file_format,
                  "packing": None if self.packing is None else vars(self.packing)}
        text = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        return {"VMET": lossless.pack(text), "VCRD": lossless.pack(b"".join(blobs))}

    @classmethod
    def from_sections(cls, sections: dict[str, bytes]) -> VariableMeta | None:
        """The metadata :meth:`to_sections` wrote, or None when the stream has none; damage is a
        StreamFormatError."""
        if "VMET" not in sections:
            return None
        try:
            record = json.loads(lossless.unpack(sections["VMET"], "variable metadata"))
            blob = lossless.unpack(sections.get("VCRD", b""), "coordinate") if "VCRD" in sections else b""
            coords = []
            for c in record["coords"]:
                dtype = np.dtype(str(c["dtype"]))
                shape = tuple(int(n) for n in c["shape"])
                start, size = int(c["offset"]), int(c["nbytes"])
                if (dtype.kind not in COORD_KINDS or min(shape, default=1) < 0 or start < 0
                        or size != int(np.prod(shape)) * dtype.itemsize or start + size > len(blob)):
                    raise ValueError("a coordinate does not match its bytes")
                values = np.frombuffer(blob, dtype, int(np.prod(shape)), start).reshape(shape)
                coords.append(Coordinate(str(c["name"]), tuple(str(d) for d in c["dims"]), _attrs_back(c["attrs"]),
                                         values.astype(dtype.newbyteorder("="))))
            packing = record["packing"]
            return cls(str(record["name"]), tuple(str(d) for d in record["dims"]), _attrs_back(record["attrs"]),
                       tuple(coords), _attrs_back(record["global_attrs"]), str(record["file_format"]),
                       None if packing is None else Packing(str(packing["dtype"]), float(packing["scale_factor"]),
                                                            float(packing["add_offset"])))
        except StreamFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise StreamFormatError(f"the variable metadata is corrupted ({exc})") from None


def _attr_json(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return {"dtype": array.dtype.newbyteorder("<").str if array.dtype.byteorder != "|" else array.dtype.str,
                "shape": list(array.shape), "data": array.ravel().tolist()}
    if array.dtype.kind in "SUO":
        return {"strings": [str(v) for v in array.ravel().tolist()]}
    return str(value)


def _attrs_json(attrs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _attr_json(v) for k, v in attrs.items()}


def _attrs_back(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("attributes are not an object")
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, dict) and "bytes" in v:
            out[k] = str(v["bytes"]).encode("latin-1")
        elif isinstance(v, dict) and "strings" in v:
            out[k] = [str(s) for s in v["strings"]] if len(v["strings"]) != 1 else str(v["strings"][0])
        elif isinstance(v, dict) and "dtype" in v:
            dtype = np.dtype(str(v["dtype"]))
            if dtype.kind not in "biuf":
                raise ValueError(f"attribute {k} has dtype {dtype}")
            array = np.asarray(v["data"], dtype).reshape([int(n) for n in v["shape"]])
            out[k] = array[()] if array.ndim == 0 else array
        else:
            raise ValueError(f"attribute {k} is garbled")
    return out


@dataclass(frozen=True)
class CFField:
    """A variable read from a file: values (float, as compressed), its missing-value rule, its metadata, and
    notes for the user (unpacking, undeclared choices)."""

    data: np.ndarray
    rule: MissingRule
    meta: VariableMeta
    notes: tuple[str, ...] = ()


def rule_from_attrs(attrs: dict[str, Any]) -> MissingRule:
    """The missing values a variable's CF attributes declare (fills, valid range); detection stays on."""
    fills: list[float] = []
    for key in ("_FillValue", "missing_value"):
        if key in attrs:
            fills += [float(v) for v in np.asarray(attrs[key]).ravel()]
    low = high = None
    if "valid_range" in attrs:
        bounds = np.asarray(attrs["valid_range"]).ravel()
        if bounds.size == 2:
            low, high = float(bounds[0]), float(bounds[1])
    if "valid_min" in attrs:
        low = float(np.asarray(attrs["valid_min"]).ravel()[0])
    if "valid_max" in attrs:
        high = float(np.asarray(attrs["valid_max"]).ravel()[0])
    return MissingRule(tuple(fills), low, high)


def is_packed(dtype: np.dtype, attrs: dict[str, Any]) -> bool:
    return dtype.kind in "iu" and ("scale_factor" in attrs or "add_offset" in attrs)


def _open_netcdf(path: Path) -> Any:
    try:
        import xarray as xr
    except ImportError:
        raise InvalidInputError(f"{path.name}: NetCDF input needs xarray (pip install xarray scipy h5netcdf)") \
            from None
    with open(path, "rb") as f:
        classic = f.read(3) == b"CDF"
    try:
        return xr.open_dataset(path, decode_cf=False, engine="scipy" if classic else "h5netcdf"), classic
    except ImportError as exc:
        raise InvalidInputError(f"{path.name}: reading it needs {exc.name} (pip install scipy h5netcdf)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path.name}: cannot read as NetCDF ({exc})") from None


def compressible(dtype: np.dtype, attrs: dict[str, Any], ndim: int) -> bool:
    """Whether srnsz can compress a variable: floating point, or CF-packed integers, of 1 to 4 dimensions."""
    return 1 <= ndim <= 4 and (dtype.kind == "f" and dtype.itemsize in (4, 8) or is_packed(dtype, attrs))


def read_variable(path: str | Path, var: str | None) -> CFField:
    """Variable ``var`` of a NetCDF (through xarray) or HDF5 (through h5py) file, with its metadata."""
    path = Path(path)
    if path.suffix.lower() in HDF5_SUFFIXES:
        return _read_hdf5(path, var)
    ds, classic = _open_netcdf(path)
    with ds:
        names = sorted(str(k) for k, v in ds.variables.items() if compressible(v.dtype, v.attrs, v.ndim))
        if var is None or var not in ds.variables:
            raise InvalidInputError(f"{path.name}: give --var, one of {', '.join(names) or '(none)'}")
        v = ds.variables[var]
        if not compressible(v.dtype, v.attrs, v.ndim):
            why = (f"{v.ndim} dimensions (srnsz takes 1 to 4)" if not 1 <= v.ndim <= 4
                   else f"its values are {v.dtype} without CF scale_factor/add_offset packing")
            raise InvalidInputError(f"{path.name}: variable {var!r} cannot be compressed: {why}; "
                                    f"floating-point variables: {', '.join(names) or '(none)'}")
        coords = _coordinates(ds, var)
        meta = VariableMeta(var, tuple(str(d) for d in v.dims), dict(v.attrs), coords, dict(ds.attrs),
                            "NETCDF3_64BIT" if classic else "NETCDF4")
        if not is_packed(v.dtype, v.attrs):
            return CFField(np.asarray(v.values), rule_from_attrs(v.attrs), meta)
        return _unpack(var, v, meta)


def declared_rule(path: str | Path, var: str | None) -> MissingRule:
    """The missing-value rule of variable ``var``'s attributes, without reading its values (packed variables
    declare none: unpacking turns their missing values into NaN)."""
    path = Path(path)
    if path.suffix.lower() in HDF5_SUFFIXES:
        import h5py

        with h5py.File(path, "r") as h5:
            attrs = dict(h5[var].attrs) if var in h5 else {}
            dtype = h5[var].dtype if var in h5 else np.dtype("f4")
    else:
        ds, _ = _open_netcdf(path)
        with ds:
            if var not in ds.variables:
                return MissingRule()
            attrs, dtype = dict(ds.variables[var].attrs), ds.variables[var].dtype
    return MissingRule() if is_packed(dtype, attrs) else rule_from_attrs(attrs)


def _unpack(name: str, v: Any, meta: VariableMeta) -> CFField:
    """A CF-packed variable as floats (xarray's decoding), missing values (fills, outside the valid range in
    packed units) as NaN; the packing is recorded in the metadata."""
    import xarray as xr

    raw = np.asarray(v.values)
    packed_rule = rule_from_attrs(v.attrs)
    mask = packed_rule.declared_mask(raw.astype(np.float64))
    decoded = np.array(xr.conventions.decode_cf_variable(name, v, decode_times=False).values)
    if decoded.dtype.kind != "f":
        decoded = decoded.astype(np.float64)
    decoded[mask] = np.nan
    packing = Packing(raw.dtype.newbyteorder("<").str if raw.dtype.byteorder != "|" else raw.dtype.str,
                      float(np.asarray(v.attrs.get("scale_factor", 1.0)).ravel()[0]),
                      float(np.asarray(v.attrs.get("add_offset", 0.0)).ravel()[0]))
    note = (f"{name} is packed ({raw.dtype} x scale_factor {packing.scale_factor:.6g} + add_offset "
            f"{packing.add_offset:.6g}): unpacked to {decoded.dtype} as xarray does, missing values as NaN; "
            f"a bound below half the packing step ({packing.step / 2:.3g}) only spends bits on packing noise")
    return CFField(decoded, MissingRule(), VariableMeta(meta.name, meta.dims, meta.attrs, meta.coords,
                                                        meta.global_attrs, meta.file_format, packing), (note,))


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
        values = np.asarray(c.values)
        if values.dtype.kind == "O":
            values = values.astype(str)
        if values.dtype.kind in COORD_KINDS:
            out.append(Coordinate(str(name), tuple(str(d) for d in c.dims), dict(c.attrs), values))
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
        raw_rule = rule_from_attrs(attrs)
        mask = raw_rule.declared_mask(values.astype(np.float64))
        scale = float(np.asarray(attrs.get("scale_factor", 1.0)).ravel()[0])
        offset = float(np.asarray(attrs.get("add_offset", 0.0)).ravel()[0])
        decoded = values * scale + offset
        decoded[mask] = np.nan
        packing = Packing(values.dtype.str, scale, offset)
        return CFField(decoded, MissingRule(), VariableMeta(var, dims, attrs, (), meta.global_attrs, "HDF5", packing),
                       (f"{var} is packed ({values.dtype}): unpacked to float64, missing values as NaN",))
    return CFField(values, rule_from_attrs(attrs), meta)


def write_variable(path: Path, data: np.ndarray, meta: VariableMeta | None, var: str | None) -> None:
    """Write ``data`` to ``path`` (.nc / .h5 by suffix) as variable ``var`` (default the metadata's name, else
    ``data``), with the metadata's dimension names, attributes, coordinates and packing when given."""
    name = var or (meta.name if meta else "data")
    if meta is None:
        meta = VariableMeta(name, tuple(f"dim_{a}" for a in range(data.ndim)), file_format="NETCDF3_64BIT")
    if len(meta.dims) != data.ndim:
        raise InvalidInputError(f"the stream's dimension names {meta.dims} do not fit its shape {data.shape}")
    if path.suffix.lower() in HDF5_SUFFIXES or meta.file_format == "HDF5" and path.suffix.lower() not in (
            NETCDF_SUFFIXES):
        _write_hdf5(path, data, meta, name)
        return
    import xarray as xr

    attrs = dict(meta.attrs)
    encoding: dict[str, Any] = {}
    if meta.packing is not None:
        encoding = {"dtype": np.dtype(meta.packing.dtype)}
        for key in ENCODING_ATTRS:
            if key in attrs:
                encoding[key] = attrs.pop(key)
    elif "_FillValue" not in attrs:
        encoding["_FillValue"] = None  # xarray would add a NaN fill the original did not have
    variables = {name: xr.Variable(meta.dims, data, attrs)}
    encodings = {name: encoding}
    for c in meta.coords:
        variables[c.name] = xr.Variable(c.dims, c.values, dict(c.attrs))
        encodings[c.name] = {} if "_FillValue" in c.attrs or c.values.dtype.kind not in "fc" else {
            "_FillValue": None}
    dataset = xr.Dataset(variables, attrs=dict(meta.global_attrs))
    classic = meta.file_format.startswith("NETCDF3") and all(
        v.dtype.kind in "SUf" or v.dtype in (np.int8, np.int16, np.int32, np.uint8) for v in dataset.variables.values())
    try:
        dataset.to_netcdf(path, format=meta.file_format if classic else "NETCDF4",
                          engine="scipy" if classic else "h5netcdf", encoding=encodings)
    except ImportError as exc:
        raise InvalidInputError(f"writing {path.name} needs {exc.name} (pip install scipy h5netcdf)") from None


def _write_hdf5(path: Path, data: np.ndarray, meta: VariableMeta, name: str) -> None:
    import h5py

    with h5py.File(path, "w") as h5:
        for k, v in meta.global_attrs.items():
            h5.attrs[k] = v
        if meta.packing is not None:
            p = meta.packing
            fill = np.asarray(meta.attrs.get("_FillValue", meta.attrs.get("missing_value", 0))).ravel()[0]
            stored = np.where(np.isnan(data), fill, np.rint((data - p.add_offset) / p.scale_factor))
            dataset = h5.create_dataset(name, data=stored.astype(p.dtype))
        else:
            dataset = h5.create_dataset(name, data=data)
        for k, v in meta.attrs.items():
            dataset.attrs[k] = v
