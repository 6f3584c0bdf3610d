"""The variable-metadata sections of a stream: a NetCDF/HDF5 variable's name, dimensions, attributes, coordinates,
the file's attributes and format, and its CF packing (``VMET``: zstd JSON; ``VCRD``: zstd of the coordinate arrays'
bytes; ``VCRS``: coordinates coded as streams, format 1.10, :mod:`srnsz.format.coords`). Reading and writing files is
:mod:`srnsz.io.cf`'s; this module only turns the record into sections and back, refusing damage with
StreamFormatError.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srnsz.coding import lossless
from srnsz.errors import StreamFormatError
from srnsz.format import coords

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
        """One packing step in data units: the absolute value of scale_factor."""
        return abs(self.scale_factor)


@dataclass(frozen=True)
class Coordinate:
    """A coordinate variable written beside the variable: name, dimension names, attributes, values."""

    name: str
    dims: tuple[str, ...]
    attrs: dict[str, Any]
    values: np.ndarray
    char_dim: str | None = None  # NetCDF-3 strings: the character dimension they are written along


@dataclass(frozen=True)
class VariableMeta:
    """What writing a variable back to its kind of file needs, besides its values."""

    name: str
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    coords: tuple[Coordinate, ...] = ()
    global_attrs: dict[str, Any] = field(default_factory=dict)
    file_format: str = "NETCDF4"  # as srnsz.io.netcdf.file_format names them (NETCDF3_CLASSIC, ..., NETCDF4, HDF5)
    packing: Packing | None = None
    packed_missing: np.ndarray | None = None  # packed variables: the raw integers of the missing points, C order
    unlimited: tuple[str, ...] = ()  # the unlimited dimensions among the variable's and its coordinates'
    group: str = "/"  # the NetCDF-4 group holding the variable

    def to_sections(self, codec: coords.CoordinateCodec | None = None) -> dict[str, bytes]:
        """Sections ``VMET`` (JSON) and ``VCRD`` (raw coordinate bytes), both zstd, and, when ``codec`` is given and
        some coordinate is worth it, ``VCRS`` (coded coordinates, format 1.10: srnsz.format.coords)."""
        blobs, entries, offset = [], [], 0
        coded: list[bytes] = []
        for c in self.coords:
            entry = {"name": c.name, "dims": list(c.dims), "attrs": _attrs_json(c.attrs),
                     "dtype": c.values.dtype.newbyteorder("<").str if c.values.dtype.byteorder != "|"
                     else c.values.dtype.str, "shape": list(c.values.shape), "char_dim": c.char_dim}
            done = coords.encode(c.values, c.attrs, codec) if codec is not None else None
            if done is not None:
                start = sum(len(b) for b in coded)
                entry["coded"] = {"eb": done.eb, "offset": start, "nbytes": len(done.stream)}
                coded.append(done.stream)
                if done.turns is not None:
                    entry["coded"]["turns"] = {"offset": start + len(done.stream), "nbytes": len(done.turns)}
                    coded.append(done.turns)
                entries.append(entry)
                continue
            raw = np.ascontiguousarray(c.values, c.values.dtype.newbyteorder("<")
                                       if c.values.dtype.byteorder not in "|" else c.values.dtype).tobytes()
            entries.append({**entry, "offset": offset, "nbytes": len(raw)})
            blobs.append(raw)
            offset += len(raw)
        coords_json = entries
        record = {"name": self.name, "dims": list(self.dims), "attrs": _attrs_json(self.attrs), "coords": coords_json,
                  "global_attrs": _attrs_json(self.global_attrs), "file_format": self.file_format,
                  "packing": None if self.packing is None else vars(self.packing)}
        if self.unlimited:
            record["unlimited"] = list(self.unlimited)
        if self.group != "/":
            record["group"] = self.group
        if self.packed_missing is not None:
            raw = np.ascontiguousarray(self.packed_missing, self.packed_missing.dtype.newbyteorder("<")).tobytes()
            record["packed_missing"] = {"count": int(self.packed_missing.size), "offset": offset, "nbytes": len(raw)}
            blobs.append(raw)
        text = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        sections = {"VMET": lossless.pack(text), "VCRD": lossless.pack(b"".join(blobs))}
        if coded:
            sections[coords.SECTION] = b"".join(coded)
        return sections

    @classmethod
    def from_sections(cls, sections: dict[str, bytes],
                      codec: coords.CoordinateCodec | None = None) -> VariableMeta | None:
        """The metadata :meth:`to_sections` wrote, or None when the stream has none; damage is a
        StreamFormatError. ``codec`` decodes coded coordinates (format 1.10; without one they are an error)."""
        if "VMET" not in sections:
            return None
        try:
            record = json.loads(lossless.unpack(sections["VMET"], "variable metadata", MAX_META_BYTES))
            blob = lossless.unpack(sections["VCRD"], "coordinate", MAX_META_BYTES) if "VCRD" in sections else b""
            coded = sections.get(coords.SECTION, b"")
            variables = []
            for c in record["coords"]:
                dtype = np.dtype(str(c["dtype"]))
                shape = tuple(int(n) for n in c["shape"])
                if dtype.kind not in COORD_KINDS or min(shape, default=1) < 0:
                    raise ValueError("a coordinate's type or shape is invalid")
                if "coded" in c:
                    values = _coded_values(c["coded"], coded, dtype, shape, codec)
                else:
                    start, size = int(c["offset"]), int(c["nbytes"])
                    if start < 0 or size != math.prod(shape) * dtype.itemsize or start + size > len(blob):
                        raise ValueError("a coordinate does not match its bytes")
                    values = np.frombuffer(blob, dtype, math.prod(shape), start).reshape(shape)
                char_dim = c.get("char_dim")
                variables.append(Coordinate(str(c["name"]), tuple(str(d) for d in c["dims"]),
                                            _attrs_back(c["attrs"]), values.astype(dtype.newbyteorder("=")),
                                            None if char_dim is None else str(char_dim)))
            packing = None if record["packing"] is None else Packing(
                str(record["packing"]["dtype"]), float(record["packing"]["scale_factor"]),
                float(record["packing"]["add_offset"]))
            kept = None
            if packing is not None:
                if (np.dtype(packing.dtype).kind not in "iu" or not np.isfinite(packing.scale_factor)
                        or packing.scale_factor == 0 or not np.isfinite(packing.add_offset)):
                    raise ValueError(f"packing {packing} is not an integer CF packing")
                if "packed_missing" in record:
                    entry, dtype = record["packed_missing"], np.dtype(packing.dtype)
                    start, count = int(entry["offset"]), int(entry["count"])
                    if start < 0 or count < 0 or start + count * dtype.itemsize > len(blob):
                        raise ValueError("the packed missing values do not match their bytes")
                    kept = np.frombuffer(blob, dtype.newbyteorder("<"), count, start).astype(dtype)
            name, dims = str(record["name"]), tuple(str(d) for d in record["dims"])
            if not name or "/" in name or len(set(dims)) != len(dims) or not all(dims):
                raise ValueError(f"variable {name!r} with dimensions {dims} cannot be written")
            unlimited = tuple(str(d) for d in record.get("unlimited", []))
            group = str(record.get("group", "/"))
            if not group.startswith("/") or "//" in group or (group != "/" and group.endswith("/")):
                raise ValueError(f"group {group!r}")
            return cls(name, dims, _attrs_back(record["attrs"]), tuple(variables),
                       _attrs_back(record["global_attrs"]), str(record["file_format"]), packing, kept, unlimited, group)
        except StreamFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, OverflowError,
                RecursionError) as exc:
            raise StreamFormatError(f"the variable metadata is corrupted ({exc})") from None


def _coded_values(entry: dict[str, Any], coded: bytes, dtype: np.dtype, shape: tuple[int, ...],
                  codec: coords.CoordinateCodec | None) -> np.ndarray:
    """A coded coordinate's values from its record and section ``VCRS``."""
    if codec is None:
        raise ValueError("a coded coordinate needs a decoder")

    def piece(where: dict[str, Any]) -> bytes:
        start, size = int(where["offset"]), int(where["nbytes"])
        if start < 0 or size < 0 or start + size > len(coded):
            raise ValueError("a coded coordinate does not match its bytes")
        return coded[start:start + size]

    turns = piece(entry["turns"]) if "turns" in entry else None
    return coords.decode(coords.CodedCoordinate(piece(entry), float(entry["eb"]), turns), dtype, shape, codec)


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
