"""srnsz as a numcodecs codec (codec id ``srnsz``), and as a Zarr v3 array-to-bytes codec.

Zarr arrays and xarray datasets stored with it are compressed chunk by chunk; each chunk is an ordinary srnsz
stream, so each chunk's bound holds on every value. Use an ``abs`` bound for a store: a ``rel`` bound is
relative to each chunk's own range.

    import zarr
    from srnsz.io.codec import SrnszZarr3
    z = zarr.create_array("out.zarr", shape=data.shape, chunks=(64, 64, 64), dtype="f4",
                          serializer=SrnszZarr3(eb=0.01))
    xarray: ds.to_zarr("out.zarr", encoding={"t": {"serializer": SrnszZarr3(eb=0.01)}})

``Srnsz`` (numcodecs) works wherever numcodecs codecs do: zarr v2-format arrays (``compressor=Srnsz(...)``),
``numcodecs.get_codec({"id": "srnsz", "eb": 0.01})``, HDF5 pipelines built on numcodecs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.registry import register_codec

from srnsz import api
from srnsz.errors import InvalidInputError, StreamFormatError

CODEC_ID = "srnsz"


class Srnsz(Codec):
    """numcodecs codec: ``encode`` takes a float32/float64 array (the chunk), ``decode`` gives it back.

    eb, mode: the error bound (default abs, data units); predictor, options and the missing-value rule
    (``fill_value``: one value or a list, ``valid_range``: [min, max], ``detect_fills``) as for
    :func:`srnsz.compress`: the chunk's missing values come back bit for bit and never widen its bound.
    ``threads`` (None: the cores available) codes a chunk large enough to be cut in parts (format 1.11) on that many
    cores both ways, and a smaller one's code tables side by side; a store that already codes chunks side by side may
    want 1.
    """

    codec_id = CODEC_ID

    def __init__(self, eb: float = 1e-3, mode: str = "abs", predictor: str = "interp", **options: Any) -> None:
        options = dict(options)
        for key in ("fill_value", "valid_range"):  # JSON-able config: plain floats in lists
            if options.get(key) is not None:
                try:
                    options[key] = [None if v is None else float(v) for v in np.asarray(
                        options[key], dtype=object).ravel().tolist()]
                except (TypeError, ValueError):
                    raise InvalidInputError(f"{key} must be numbers, got {options[key]!r}") from None
        self.eb, self.mode, self.predictor, self.options = float(eb), mode, predictor, options
        self._codec = api.Codec(self.eb, mode, predictor, **options)  # validates the settings now

    def encode(self, buf: Any) -> bytes:
        """The srnsz stream of one chunk (1-4 dimensions kept, others flattened)."""
        array, codec = np.asanyarray(buf), self._codec
        if np.ma.is_masked(array):  # masked points are missing values (api.unmasked)
            array, fills = api.unmasked(array, self.options.get("fill_value"))
            codec = api.Codec(self.eb, self.mode, self.predictor, **{**self.options, "fill_value": fills})
        array = np.asarray(array)
        if array.ndim == 0 or array.ndim > 4:
            array = array.reshape(-1)
        return codec.compress(array)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        """The chunk a stream holds, written into ``out`` when given."""
        data = api.decompress(bytes(memoryview(buf)), threads=self.options.get("threads"))
        if out is None:
            return data
        target = np.asarray(out)
        raw = target.dtype.itemsize == 1 and target.dtype.kind in "uiV"  # a byte buffer of the chunk
        if target.nbytes != data.nbytes or not (raw or target.dtype.newbyteorder("=") == data.dtype):
            raise StreamFormatError(f"the chunk's stream holds {data.size} {data.dtype} values, the output "
                                    f"{target.size} {target.dtype}")
        if raw:
            target.reshape(-1).view(data.dtype)[:] = data.reshape(-1)
        else:  # (a big-endian output takes the values, not the bytes)
            target.reshape(-1)[:] = data.reshape(-1)
        return out

    def get_config(self) -> dict[str, Any]:
        """The codec's JSON configuration (``numcodecs.get_codec`` rebuilds it)."""
        return {"id": self.codec_id, "eb": self.eb, "mode": self.mode, "predictor": self.predictor, **self.options}

    def __repr__(self) -> str:
        return f"Srnsz(eb={self.eb}, mode={self.mode!r}, predictor={self.predictor!r}, options={self.options})"


register_codec(Srnsz)


def _zarr3_codec() -> type:
    from zarr.abc.codec import ArrayBytesCodec
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

    @dataclass(frozen=True)
    class SrnszZarr3(ArrayBytesCodec):
        """Zarr v3 array-to-bytes codec ``srnsz`` (configuration: eb, mode, predictor, options)."""

        is_fixed_size = False
        eb: float = 1e-3
        mode: str = "abs"
        predictor: str = "interp"
        options: dict[str, Any] = field(default_factory=dict)

        def __post_init__(self) -> None:
            Srnsz(self.eb, self.mode, self.predictor, **self.options)  # validate now, not at the first write

        @classmethod
        def from_dict(cls, data: dict[str, Any]) -> SrnszZarr3:
            """The codec of a Zarr v3 array's metadata entry (``{"name": "srnsz", "configuration": {...}}``)."""
            return cls(**data.get("configuration", {}))

        def to_dict(self) -> dict[str, Any]:
            """The codec's Zarr v3 metadata entry."""
            return {"name": CODEC_ID, "configuration": {"eb": self.eb, "mode": self.mode,
                                                        "predictor": self.predictor, "options": self.options}}

        def _codec(self) -> Srnsz:
            return Srnsz(self.eb, self.mode, self.predictor, **self.options)

        async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
            array = chunk_array.as_numpy_array()
            return chunk_spec.prototype.buffer.from_bytes(self._codec().encode(array))

        async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
            native = getattr(chunk_spec.dtype, "to_native_dtype", lambda: chunk_spec.dtype)()
            shape = tuple(chunk_spec.shape)
            coded = shape if 1 <= len(shape) <= 4 else (math.prod(shape),)  # as encode flattens it
            data = api.decompress(chunk_bytes.to_bytes(), shape=coded,
                                  dtype=np.dtype(native).newbyteorder("=")).reshape(shape)
            return chunk_spec.prototype.nd_buffer.from_numpy_array(data)

        def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
            """Not known before encoding: a stream's size depends on the data."""
            raise NotImplementedError  # variable size

    from zarr.registry import register_codec as register_zarr_codec

    register_zarr_codec(CODEC_ID, SrnszZarr3)
    return SrnszZarr3


def __getattr__(name: str) -> Any:
    # zarr is optional: the v3 codec class is built on first use.
    if name == "SrnszZarr3":
        cls = _zarr3_codec()
        globals()["SrnszZarr3"] = cls
        return cls
    raise AttributeError(name)
