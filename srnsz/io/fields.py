"""Reading fields from .npy or raw binary files, and writing them (through srnsz.io.outputs)."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from srnsz.errors import InvalidInputError
from srnsz.io import cf
from srnsz.io.cf import HDF5_SUFFIXES, NETCDF_SUFFIXES, CFField, VariableMeta
from srnsz.io.outputs import write_atomically
from srnsz.io.packed import float_scaling
from srnsz.missing import MissingRule

RAW_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8")}


VARIABLE_SUFFIXES = HDF5_SUFFIXES + NETCDF_SUFFIXES


def read_variable(path: Path, var: str | None) -> np.ndarray:
    """Values of variable ``var`` of a NetCDF or HDF5 file (see :func:`srnsz.io.cf.read_variable`)."""
    return cf.read_variable(path, var).data


def _input_kind(path: Path, dtype: str | None, shape: list[int] | None) -> str:
    """``variable`` (HDF5/NetCDF), ``npy`` or ``raw``, after checking the file exists and the flags fit."""
    if path.is_dir():
        raise InvalidInputError(f"input {str(path)!r} is a directory; give a file")
    if not path.is_file():
        raise InvalidInputError(f"input file {str(path)!r} does not exist")
    if dtype is None and shape is None:
        if path.suffix.lower() in VARIABLE_SUFFIXES:
            return "variable"
        if path.suffix.lower() != ".npy":
            raise InvalidInputError(f"{path.name}: not a .npy file; for raw binary give --dtype and --shape")
        return "npy"
    return "raw"


NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path, mmap_mode: str | None) -> np.ndarray:
    """A .npy file's array (memory-mapped with ``mmap_mode``), or a clear error: not a .npy file, one holding
    Python objects, a truncated one."""
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise InvalidInputError(f"{path.name} is not a .npy file (it does not start with NumPy's magic bytes); "
                                    "for raw binary give --dtype and --shape")
    _check_npy_size(path)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except MemoryError:
        raise InvalidInputError(f"{path.name} is too large to load into memory here") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InvalidInputError(f"{path.name} holds Python objects, not numbers; srnsz reads numeric .npy "
                                    "files") from None
        raise InvalidInputError(f"{path.name}: cannot read as .npy ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InvalidInputError(f"{path.name}: cannot read as .npy ({exc})") from None


def _check_npy_size(path: Path) -> None:
    """Refuse a .npy file whose header asks for more bytes than follow it, before NumPy allocates the array the
    header describes (a truncated file, or a damaged header's huge shape)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno())
        if not stat.S_ISREG(size.st_mode):
            return  # no size to compare with
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                return  # a newer header layout: np.load judges it
            shape, _, dtype = read_header(f)
        except ValueError as exc:
            raise InvalidInputError(f"{path.name}: cannot read as .npy ({exc})") from None
        held = size.st_size - f.tell()
    if dtype.hasobject:
        return  # refused as Python objects by np.load
    needed = math.prod(shape) * dtype.itemsize  # Python ints: a huge shape cannot overflow
    if needed > held:
        raise InvalidInputError(f"{path.name}: its header says shape {tuple(shape)} of {dtype} ({needed} bytes), but "
                                f"only {held} bytes follow the header (truncated or damaged)")


def _raw_layout(path: Path, dtype: str | None, shape: list[int] | None) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) of a raw input, checked against the flags and the file size."""
    if dtype is None or shape is None:
        raise InvalidInputError("raw input needs both --dtype and --shape")
    if dtype not in RAW_DTYPES:
        raise InvalidInputError(f"--dtype must be one of {', '.join(RAW_DTYPES)}, got {dtype!r}")
    dt = RAW_DTYPES[dtype]
    if not shape or min(shape) < 1:
        raise InvalidInputError(f"--shape must be positive sizes, got {shape}")
    expected = int(np.prod(shape)) * dt.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise InvalidInputError(
            f"{path.name} has {actual} bytes, but shape {tuple(shape)} of {dtype} needs {expected}")
    return dt, tuple(shape)


def read_field(path: str | Path, dtype: str | None = None, shape: list[int] | None = None,
               var: str | None = None) -> np.ndarray:
    """Load ``path``: a .npy file, variable ``var`` of an HDF5/NetCDF file, or raw little-endian binary when
    ``dtype`` and ``shape`` (C order, slowest axis first) are given."""
    path = Path(path)
    kind = _input_kind(path, dtype, shape)
    if kind == "variable":
        return read_variable(path, var)
    if kind == "npy":
        return _load_npy(path, None)
    dt, dims = _raw_layout(path, dtype, shape)
    return np.fromfile(path, dtype=dt).reshape(dims)


def read_input(path: str | Path, dtype: str | None = None, shape: list[int] | None = None,
               var: str | None = None) -> CFField:
    """Like :func:`read_field`, with what the file declares: a NetCDF/HDF5 variable's missing-value rule,
    metadata and unpacking notes (see :mod:`srnsz.io.cf`); a .npy or raw file declares nothing."""
    path = Path(path)
    if _input_kind(path, dtype, shape) == "variable":
        return cf.read_variable(path, var)
    return CFField(read_field(path, dtype, shape, var), MissingRule(), None)


def declared_rule(path: str | Path, var: str | None, dtype: str | None = None,
                  shape: list[int] | None = None) -> MissingRule:
    """The missing-value rule a file declares for ``var`` without reading its values (NetCDF/HDF5 attributes;
    nothing for .npy and raw files)."""
    path = Path(path)
    if _input_kind(path, dtype, shape) != "variable":
        return MissingRule()
    return cf.declared_rule(path, var)


def is_scaled(path: str | Path, var: str | None, dtype: str | None = None, shape: list[int] | None = None) -> bool:
    """Whether ``var`` of a NetCDF/HDF5 file is a floating-point variable that CF readers scale
    (:func:`srnsz.io.packed.float_scaling`), read from its attributes alone."""
    path = Path(path)
    return _input_kind(path, dtype, shape) == "variable" and float_scaling(*cf.declared_attrs(path, var)) is not None


def write_field(path: str | Path, data: np.ndarray, force: bool, var: str | None = None,
                meta: VariableMeta | None = None) -> str:
    """Write ``data`` by suffix: .npy; .h5/.hdf5 or .nc (variable ``var``, default the metadata's name or
    ``data``, with the metadata's dimensions, attributes, coordinates, packing, group and format when given); else
    raw little-endian binary. Returns a note for the user when the file's format is not the recorded one (else
    empty)."""
    suffix = Path(path).suffix.lower()
    notes: list[str] = []

    def write(tmp: Path) -> None:
        if suffix in VARIABLE_SUFFIXES:
            notes.append(cf.write_variable(tmp, data, meta, var))
        else:
            with open(tmp, "wb") as f:
                if suffix == ".npy":
                    np.save(f, data)
                else:
                    f.write(np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes())

    write_atomically(path, write, force)
    return "".join(notes)


@contextmanager
def open_lazy(path: str | Path, dtype: str | None = None, shape: list[int] | None = None,
              var: str | None = None) -> Iterator[Any]:
    """Like :func:`read_field` but without loading: yields an array-like sliced on demand (np.memmap for .npy
    and raw files, an h5py dataset for HDF5/NetCDF-4), for chunked compression of arrays larger than memory."""
    path = Path(path)
    kind = _input_kind(path, dtype, shape)
    if kind == "raw":
        dt, dims = _raw_layout(path, dtype, shape)
        yield np.memmap(path, dt, "r", shape=dims)
    elif kind == "npy":
        yield _load_npy(path, "r")
    else:
        with open(path, "rb") as f:
            classic = f.read(3) == b"CDF"
        if classic:  # classic NetCDF has no lazy reader here: load it
            yield read_variable(path, var)
            return
        import h5py

        try:
            h5 = h5py.File(path, "r")
        except OSError as exc:
            raise InvalidInputError(f"{path.name}: cannot read as HDF5/NetCDF ({exc})") from None
        with h5:
            if var is None or var not in h5 or not isinstance(h5[var], h5py.Dataset):
                read_variable(path, var)  # raises with the list of variables
            if h5[var].dtype.kind != "f":  # packed integers: unpacked in memory
                yield read_variable(path, var)
                return
            yield h5[var]
