"""Reading fields from .npy or raw binary files and writing outputs atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from srnsz.errors import InvalidInputError, SrnszError

RAW_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8")}


HDF5_SUFFIXES = (".h5", ".hdf5", ".he5", ".nc", ".nc4")


def read_variable(path: Path, var: str | None) -> np.ndarray:
    """Read variable ``var`` of an HDF5 or NetCDF file (NetCDF-4 through h5py, classic NetCDF through scipy)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:3] == b"CDF":
        try:
            from scipy.io import netcdf_file
        except ImportError:
            raise InvalidInputError(f"{path.name}: classic NetCDF needs scipy (pip install scipy)") from None
        with netcdf_file(path, "r", mmap=False) as nc:
            names = sorted(k for k, v in nc.variables.items() if v.data.dtype.kind == "f")
            if var not in nc.variables:
                raise InvalidInputError(f"{path.name}: give --var, one of {', '.join(names)}")
            return np.array(nc.variables[var].data)
    try:
        import h5py
    except ImportError:
        raise InvalidInputError(f"{path.name}: HDF5/NetCDF-4 input needs h5py (pip install h5py)") from None
    try:
        with h5py.File(path, "r") as h5:
            names: list[str] = []
            h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" else None)
            if var not in names:
                raise InvalidInputError(f"{path.name}: give --var, one of {', '.join(sorted(names)) or '(none)'}")
            return np.asarray(h5[var][()])
    except OSError as exc:
        raise InvalidInputError(f"{path.name}: cannot read as HDF5/NetCDF ({exc})") from None


def read_field(path: str | Path, dtype: str | None = None, shape: list[int] | None = None,
               var: str | None = None) -> np.ndarray:
    """Load ``path``: a .npy file, variable ``var`` of an HDF5/NetCDF file, or raw little-endian binary when
    ``dtype`` and ``shape`` (C order, slowest axis first) are given."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"input file {str(path)!r} does not exist")
    if path.suffix.lower() in HDF5_SUFFIXES and dtype is None and shape is None:
        return read_variable(path, var)
    if dtype is None and shape is None:
        if path.suffix.lower() != ".npy":
            raise InvalidInputError(f"{path.name}: not a .npy file; for raw binary give --dtype and --shape")
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidInputError(f"{path.name}: cannot read as .npy ({exc})") from None
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
    return np.fromfile(path, dtype=dt).reshape(shape)


def refuse_existing(path: str | Path, force: bool) -> None:
    """Raise unless ``path`` is free or ``force`` allows replacing it."""
    if Path(path).exists() and not force:
        raise SrnszError(f"output {str(path)!r} exists; use --force to overwrite it")


def write_atomically(path: str | Path, write: Callable[[Path], None], force: bool) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` and move it into place only on success.

    Refuses to replace an existing ``path`` unless ``force``; never leaves a partial file behind.
    """
    path = Path(path)
    refuse_existing(path, force)
    if not path.parent.exists():
        raise InvalidInputError(f"output directory {str(path.parent)!r} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_field(path: str | Path, data: np.ndarray, force: bool) -> None:
    """Write ``data`` as .npy when ``path`` ends in .npy, else as raw little-endian binary."""
    as_npy = str(path).lower().endswith(".npy")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            if as_npy:
                np.save(f, data)
            else:
                f.write(np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes())

    write_atomically(path, write, force)
