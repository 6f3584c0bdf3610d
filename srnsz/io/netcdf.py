"""NetCDF files as files: their format, groups and unlimited dimensions, attribute types, and how to write them.

What a round trip through srnsz must keep besides the values (srnsz.io.cf for one variable, srnsz.io.datasets for a
whole file): the file format (NETCDF3_CLASSIC stays CLASSIC, NETCDF4 stays NETCDF4), the groups of a NetCDF-4 file,
which dimensions are unlimited, and the type of every numeric attribute (a float32 attribute stays float32, also
through Zarr's JSON attributes). Files are read and written through xarray: NetCDF-3 with scipy, NetCDF-4 with
h5netcdf; the netCDF4 library where installed for the formats only it writes (NETCDF3_64BIT_DATA).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnsz.errors import InvalidInputError

CLASSIC_MAGIC = {1: "NETCDF3_CLASSIC", 2: "NETCDF3_64BIT", 5: "NETCDF3_64BIT_DATA"}
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# The engines xarray writes each format with, in order of preference.
ENGINES = {"NETCDF3_CLASSIC": ("scipy", "netcdf4"), "NETCDF3_64BIT": ("scipy", "netcdf4"),
           "NETCDF3_64BIT_DATA": ("netcdf4",), "NETCDF4_CLASSIC": ("h5netcdf", "netcdf4"),
           "NETCDF4": ("h5netcdf", "netcdf4")}
ENGINE_MODULES = {"scipy": "scipy", "netcdf4": "netCDF4", "h5netcdf": "h5netcdf"}
# Value types a Zarr store written through xarray holds: numbers, booleans, strings (no compound or opaque types).
CARRIED_KINDS = "biufcSU"
# The name h5netcdf/netCDF-C give an HDF5 dimension scale that is a dimension only, not a variable.
DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"


def file_format(path: str | Path) -> str:
    """The NetCDF format of ``path`` by its first bytes: NETCDF3_CLASSIC, NETCDF3_64BIT (64-bit offsets),
    NETCDF3_64BIT_DATA (CDF-5), NETCDF4_CLASSIC, NETCDF4, or HDF5 (an HDF5 file netCDF-C did not write)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:3] == b"CDF" and len(head) >= 4 and head[3] in CLASSIC_MAGIC:
        return CLASSIC_MAGIC[head[3]]
    if head == HDF5_MAGIC:
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                if "_nc3_strict" in h5.attrs:
                    return "NETCDF4_CLASSIC"
                netcdf = "_NCProperties" in h5.attrs or any(
                    "DIMENSION_LIST" in o.attrs or o.attrs.get("CLASS") == b"DIMENSION_SCALE"
                    for o in h5.values() if isinstance(o, h5py.Dataset))
        except OSError as exc:
            raise InvalidInputError(f"{Path(path).name}: cannot read as HDF5/NetCDF ({exc})") from None
        return "NETCDF4" if netcdf else "HDF5"
    raise InvalidInputError(f"{Path(path).name}: not a NetCDF or HDF5 file (its first bytes are {head[:4]!r})")


def read_engine(fmt: str) -> str:
    """The xarray engine that reads a file of format ``fmt``."""
    if fmt in ("NETCDF3_CLASSIC", "NETCDF3_64BIT"):
        return "scipy"
    if fmt == "NETCDF3_64BIT_DATA":
        return _needs("netcdf4", f"reading {fmt} (CDF-5) files")
    return "h5netcdf"


def _needs(engine: str, what: str) -> str:
    if importlib.util.find_spec(ENGINE_MODULES[engine]) is None:
        raise InvalidInputError(f"{what} needs the {ENGINE_MODULES[engine]} package (pip install "
                                f"{ENGINE_MODULES[engine]})")
    return engine


@dataclass(frozen=True)
class Writer:
    """How to write a NetCDF file: xarray's ``engine`` and ``format``, and ``note`` (why it is not the format
    asked for; empty when it is)."""

    engine: str
    format: str
    note: str = ""


def writer_for(fmt: str, groups: bool = False) -> Writer:
    """The writer of a file of format ``fmt`` (as :func:`file_format` names them) with what is installed; a format
    nothing installed writes (or that cannot hold groups, when the file has some) falls back to NETCDF4, noted."""
    if fmt == "HDF5":
        fmt = "NETCDF4"
    if groups and fmt != "NETCDF4":
        return Writer("h5netcdf", "NETCDF4", f"written as NETCDF4, not {fmt}: only NETCDF4 holds groups")
    for engine in ENGINES.get(fmt, ()):
        if importlib.util.find_spec(ENGINE_MODULES[engine]) is not None:
            return Writer(engine, fmt)
    missing = " or ".join(ENGINE_MODULES[e] for e in ENGINES.get(fmt, ())) or "a writer"
    return Writer("h5netcdf", "NETCDF4", f"written as NETCDF4, not {fmt}: that format needs {missing}")


def unlimited(ds: Any) -> list[str]:
    """The unlimited dimensions of a dataset xarray opened (sorted)."""
    return sorted(str(d) for d in (ds.encoding.get("unlimited_dims") or ()))


def attr_types(attrs: dict[str, Any]) -> dict[str, str]:
    """The numpy type of each numeric attribute (``<f4``, ``<i2``, ...): what Zarr's JSON attributes lose."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (np.generic, np.ndarray)) and np.asarray(value).dtype.kind in "biuf":
            dtype = np.asarray(value).dtype
            out[str(key)] = dtype.newbyteorder("<").str if dtype.byteorder != "|" else dtype.str
    return out


def typed_attrs(attrs: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """``attrs`` with each attribute named in ``types`` given back its type (a scalar for one value); attributes
    whose value does not fit the type are left as they are."""
    out = dict(attrs)
    for key, dtype in types.items():
        if key in out and not isinstance(out[key], str):
            try:
                value = np.asarray(out[key], dtype=np.dtype(dtype))
            except (TypeError, ValueError, OverflowError):
                continue
            out[key] = value[()] if value.ndim == 0 else (value[0] if value.size == 1 else value)
    return out


@dataclass(frozen=True)
class GroupContents:
    """The groups of a NetCDF-4/HDF5 file (``/`` first, parents before children) and what in it xarray cannot read:
    variables of compound, variable-length or enum types, named types, groups it cannot open."""

    groups: list[str]
    uncarried: list[str]


def group_contents(path: str | Path) -> GroupContents:
    """The groups of ``path`` and what in them cannot be carried (see :class:`GroupContents`); a NetCDF-3 file has
    the root group only."""
    if file_format(path).startswith("NETCDF3"):
        return GroupContents(["/"], [])
    import h5py
    import xarray as xr

    groups, datasets, uncarried = ["/"], {"/": []}, []
    with h5py.File(path, "r") as h5:
        def visit(name: str, obj: Any) -> None:
            parent = "/" + name.rsplit("/", 1)[0] if "/" in name else "/"
            if isinstance(obj, h5py.Group):
                groups.append("/" + name)
                datasets["/" + name] = []
            elif isinstance(obj, h5py.Datatype):
                uncarried.append(f"/{name} (a named type)")
            elif isinstance(obj, h5py.Dataset):
                label = obj.attrs.get("NAME", b"")
                if not (isinstance(label, bytes) and label.startswith(DIMENSION_ONLY)):
                    datasets[parent].append(name.rsplit("/", 1)[-1])

        h5.visititems(visit)
    for group in groups:
        try:
            with xr.open_dataset(path, engine="h5netcdf", group=group, decode_cf=False) as ds:
                read = {str(n) for n, v in ds.variables.items() if v.dtype.kind in CARRIED_KINDS}
        except Exception:  # whatever h5netcdf or xarray raise on it, the group cannot be read
            read = set()
        uncarried += [f"{group.rstrip('/')}/{name}" for name in datasets[group] if name not in read]
    return GroupContents(groups, sorted(uncarried))
