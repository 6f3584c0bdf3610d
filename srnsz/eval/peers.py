"""Compressors to benchmark side by side, one registry: srnsz predictors and the installed peers.

Every codec is asked for the same absolute pointwise bound. Peers are optional (`pip install -e ".[peers]"`);
a missing one reports why instead of failing the run.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnsz.predictors.hat import DEFAULT_MODEL


@dataclass(frozen=True)
class Compressed:
    """What a codec produced: an opaque payload and its size in bytes (what the ratio counts)."""

    payload: Any
    nbytes: int


@dataclass(frozen=True)
class BenchCodec:
    """A named compressor: `compress(data, abs_eb) -> Compressed`, `decompress(c, data) -> array like data`."""

    name: str
    description: str
    compress: Callable[[np.ndarray, float], Compressed]
    decompress: Callable[[Compressed, np.ndarray], np.ndarray]
    requires: tuple[str, ...] = ()
    weights: str | None = None
    isolated: bool = False  # native code that can crash the interpreter: the bench runs it in a child process

    def unavailable_reason(self) -> str | None:
        """None when the codec can run here, else what is missing."""
        for module in self.requires:
            try:
                __import__(module)
            except ImportError:
                return f"{self.name}: module {module!r} not installed (pip install -e '.[peers]')"
        if self.weights:
            from srnsz.neural.zoo import list_pretrained

            if self.weights not in list_pretrained():
                return f"{self.name}: weights {self.weights!r} not found in pretrained/ or SRNSZ_WEIGHTS"
        return None


CODECS: dict[str, BenchCodec] = {}


def register_codec(codec: BenchCodec) -> None:
    if codec.name in CODECS:
        raise ValueError(f"bench codec {codec.name!r} is already registered")
    CODECS[codec.name] = codec


def list_codecs() -> list[str]:
    """Names in registration order: ours first, then peers."""
    return list(CODECS)


def get_codec(name: str) -> BenchCodec:
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(CODECS)}")
    return CODECS[name]


def _srnsz(predictor: str, needs_weights: str | None = None, **options: Any) -> BenchCodec:
    def compress(data: np.ndarray, eb: float) -> Compressed:
        import srnsz

        stream = srnsz.compress(data, eb, mode="abs", predictor=predictor, **options)
        return Compressed(stream, len(stream))

    def decompress(c: Compressed, like: np.ndarray) -> np.ndarray:
        import srnsz

        return srnsz.decompress(c.payload)

    return BenchCodec(f"srnsz-{predictor}", f"srnsz, {predictor} predictor", compress, decompress,
                      ("torch",) if needs_weights else (), needs_weights)


def _sz3_compress(data: np.ndarray, eb: float) -> Compressed:
    from pysz import sz, szConfig, szErrorBoundMode

    config = szConfig()
    config.errorBoundMode, config.absErrorBound = szErrorBoundMode.ABS, eb
    blob, _ = sz.compress(np.ascontiguousarray(data), config)
    return Compressed(blob, int(blob.size))


def _sz3_decompress(c: Compressed, like: np.ndarray) -> np.ndarray:
    from pysz import sz

    out, _ = sz.decompress(c.payload, like.dtype, like.shape)
    return out


def _zfp_compress(data: np.ndarray, eb: float) -> Compressed:
    import zfpy

    blob = zfpy.compress_numpy(np.ascontiguousarray(data), tolerance=eb)
    return Compressed(blob, len(blob))


def _zfp_decompress(c: Compressed, like: np.ndarray) -> np.ndarray:
    import zfpy

    return zfpy.decompress_numpy(c.payload)


def _h5_filter(make: Callable[[float], Any]) -> tuple[Callable, Callable]:
    """HDF5 filter from hdf5plugin on one chunk holding the whole array; size = stored chunk bytes."""

    def compress(data: np.ndarray, eb: float) -> Compressed:
        import h5py

        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as h5:
            h5.create_dataset("x", data=data, chunks=data.shape, **make(eb))
            size = h5["x"].id.get_storage_size()
        return Compressed(buffer.getvalue(), int(size))

    def decompress(c: Compressed, like: np.ndarray) -> np.ndarray:
        import h5py

        with h5py.File(io.BytesIO(c.payload), "r") as h5:
            return h5["x"][()]

    return compress, decompress


def _hdf5plugin(name: str) -> Callable[[float], Any]:
    def make(eb: float) -> Any:
        import hdf5plugin

        return {"SZ3": lambda: hdf5plugin.SZ3(absolute=eb), "SZ": lambda: hdf5plugin.SZ(absolute=eb),
                "Zfp": lambda: hdf5plugin.Zfp(accuracy=eb), "Sperr": lambda: hdf5plugin.Sperr(absolute=eb)}[name]()

    return make


def _sperr_compress(data: np.ndarray, eb: float) -> Compressed:
    from numcodecs_wasm_sperr import Sperr

    blob = Sperr(mode="pwe", pwe=float(eb)).encode(np.ascontiguousarray(data))
    return Compressed(blob, int(np.asarray(blob).nbytes))


def _sperr_decompress(c: Compressed, like: np.ndarray) -> np.ndarray:
    from numcodecs_wasm_sperr import Sperr

    return np.asarray(Sperr(mode="pwe", pwe=1.0).decode(c.payload)).reshape(like.shape)


register_codec(_srnsz("interp"))
register_codec(_srnsz("lorenzo"))
register_codec(_srnsz("hat", needs_weights=DEFAULT_MODEL))
register_codec(_srnsz("ae", needs_weights="ae_2d"))
register_codec(BenchCodec("sz3", "SZ3 via pysz, default (interp + Lorenzo, tuned)", _sz3_compress, _sz3_decompress,
                          ("pysz",), isolated=True))
register_codec(BenchCodec("zfp", "ZFP via zfpy, fixed accuracy", _zfp_compress, _zfp_decompress, ("zfpy",),
                          isolated=True))
register_codec(BenchCodec("sperr", "SPERR via numcodecs-wasm-sperr, pointwise error mode", _sperr_compress,
                          _sperr_decompress, ("numcodecs_wasm_sperr",), isolated=True))
for _name, _label in [("SZ3", "h5-sz3"), ("SZ", "h5-sz"), ("Zfp", "h5-zfp"), ("Sperr", "h5-sperr")]:
    # hdf5plugin's SPERR build segfaults on fields with 1e20 fill values (ipsl_tos): isolation keeps the run going.
    register_codec(BenchCodec(_label, f"{_name} HDF5 filter from hdf5plugin, whole array as one chunk",
                              *_h5_filter(_hdf5plugin(_name)), ("h5py", "hdf5plugin"), isolated=True))
