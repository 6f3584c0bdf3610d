"""Library API: compress, decompress, info and a reusable Codec."""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from srnsz import missing, restoration
from srnsz.blas_threads import one_blas_thread
from srnsz.bounds import LARGEST_BOUND, ErrorBound
from srnsz.coding.capacity import check_capacity
from srnsz.coding.context_mixing import BINARISATION_1
from srnsz.decomposition.parts import DEFAULT_LAYOUT, PartLayout, keys_of, part_keys, sample_key, valid_starts
from srnsz.errors import InvalidInputError, ReconstructionMismatchError, SrnszError, StreamFormatError
from srnsz.format import coords, parts
from srnsz.format.container import (
    COMPACT_MINOR,
    HEAD_PREFIX,
    Container,
    head_length,
    read_container,
    read_head,
    write_container,
)
from srnsz.format.metadata import VariableMeta
from srnsz.metrics import bound_held
from srnsz.neural.runtime import Runtime, check_device
from srnsz.parallel import check_threads, in_order, workers
from srnsz.pipeline.psnr import compress_for_psnr, compress_for_ssim
from srnsz.pipeline.selection import smallest
from srnsz.predictors import PREDICTORS, create_predictor
from srnsz.predictors.base import Encoded, Predictor, Progress
from srnsz.predictors.interp import FAST_PROFILE

DTYPES = {"<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}
MISSING_FORMAT_MINOR = 3  # streams with missing values or variable metadata are format 1.3
MAX_NDIM = 4
MAX_SIDE = 1 << 48  # a header claiming more along an axis is refused before any arithmetic on it
SMALL_FIELD = 4096
# The share of a field compressed alone to estimate its stream's bytes before it is cut into parts (PartLayout's
# part_bytes): a 256th, 1-3% of the compression's time on two threads (its estimate was within 2-7% of the 64 MB
# generated field's stream at rel 1e-2 to 1e-4; smooth fields are overestimated, up to about 2x).
PART_SAMPLE_SHARE = 1 / 256
PART_SAMPLE_MIN_VALID = 1 / 8  # a box with fewer valid values estimates nothing: the field is cut by its shape
# Profiles: the interp predictor's options each one sets (the caller's options override them). "best": the best ratio
# (trial compressions, context mixing); "fast": about 4x faster to compress and 2x to decompress at 12-18% lower
# ratio on the shared fields (see FAST_PROFILE).
PROFILES: dict[str, dict[str, Any]] = {"best": {}, "fast": FAST_PROFILE}


def profile_options(profile: str, predictor: str, options: dict[str, Any]) -> dict[str, Any]:
    """The predictor options of ``profile`` with the caller's ``options`` over them."""
    if profile not in PROFILES:
        raise InvalidInputError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    if PROFILES[profile] and predictor != "interp":
        raise InvalidInputError(f"the {profile} profile is the interp predictor's; got predictor {predictor!r}")
    return {**PROFILES[profile], **options}


@dataclass(frozen=True)
class Region:
    """Where a stream's field sits in a larger array (a chunk of a chunked stream, srnsz.io.chunked): its first
    index along each axis and the whole array's shape. Recorded in the header (``region``) so that a stream read in
    another chunk's place is refused instead of decoded there."""

    origin: tuple[int, ...]
    array: tuple[int, ...]

    def to_json(self) -> dict[str, list[int]]:
        return {"origin": [int(v) for v in self.origin], "array": [int(v) for v in self.array]}

    @classmethod
    def from_json(cls, record: Any) -> Region:
        """The region a header records; StreamFormatError when garbled."""
        try:
            origin = tuple(whole_number(v) for v in record["origin"])
            array = tuple(whole_number(v) for v in record["array"])
        except (KeyError, TypeError, ValueError):
            raise StreamFormatError(f"the header's region {record!r} is garbled") from None
        if len(origin) != len(array):
            raise StreamFormatError(f"the header's region {record!r} is garbled")
        return cls(origin, array)

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether a field of ``shape`` at this origin lies inside the array."""
        return len(shape) == len(self.origin) and all(
            o >= 0 and o + n <= a for o, n, a in zip(self.origin, shape, self.array))


def whole_number(value: Any) -> int:
    """``value`` when it is a whole number as JSON gives them (an int, not a bool or a float), else ValueError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    return value


@functools.cache  # reading package metadata took ~1 ms per stream, a tenth of a small field's compression
def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def check_field(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Raise InvalidInputError unless an array of ``dtype`` and ``shape`` is one srnsz compresses (float32 or
    float64, 1 to 4 dimensions, not empty); checks a file's array before reading it."""
    if np.dtype(dtype).kind != "f" or np.dtype(dtype).itemsize not in (4, 8):
        raise InvalidInputError(f"srnsz compresses float32 or float64 arrays, got dtype {np.dtype(dtype)}")
    if not 1 <= len(shape) <= MAX_NDIM:
        raise InvalidInputError(f"srnsz compresses arrays of 1 to {MAX_NDIM} dimensions, got shape {tuple(shape)}")
    if math.prod(shape) == 0:
        raise InvalidInputError(f"the array is empty (shape {tuple(shape)})")


def as_field(array: Any) -> np.ndarray:
    """Native-endian, C-contiguous float32/float64 array of 1..4 dimensions, or a clear error."""
    data = np.asarray(array)
    check_field(data.dtype, data.shape)
    return np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))


def unmasked(array: Any, fill_value: float | Sequence[float] | None = None
             ) -> tuple[Any, float | Sequence[float] | None]:
    """(array, fill_value) to compress for a float NumPy masked array (netCDF4 returns them): its masked points
    filled with the first of the caller's ``fill_value``, else with the array's own fill_value, which is then
    declared; missing values come back bit for bit, so the masked points come back as that value. Anything else
    is returned as it is."""
    if not isinstance(array, np.ma.MaskedArray) or array.dtype.kind != "f":
        return array, fill_value
    if not np.ma.is_masked(array):
        return array.data, fill_value
    missing.MissingRule.of(fill_value)  # the caller's fill values checked
    given = [] if fill_value is None else np.asarray(fill_value, dtype=np.float64).ravel().tolist()
    chosen = given[0] if given else float(array.fill_value)
    with np.errstate(over="ignore"):
        fill = np.asarray(chosen, dtype=np.float64).astype(array.dtype)
    if np.isfinite(chosen) and not np.isfinite(fill):
        raise InvalidInputError(f"the masked points' fill value {chosen!r} does not fit {array.dtype}; give "
                                "fill_value=<a value it holds>")
    return array.filled(fill), given or [float(fill)]


def checksum(recon: np.ndarray) -> int:
    """CRC32 of the reconstruction's bytes (C order, little endian)."""
    return zlib.crc32(np.ascontiguousarray(recon, dtype=recon.dtype.newbyteorder("<")).view(np.uint8))


def _verify_bound(data: np.ndarray, recon: np.ndarray, eb: float, missing_mask: np.ndarray | None) -> None:
    """The compressor's own check before it hands out a stream: never ship a broken guarantee (valid values
    within ``eb``, missing ones bit for bit)."""
    bits = f"u{data.itemsize}"
    exact = missing_mask is None or np.array_equal(data[missing_mask].view(bits), recon[missing_mask].view(bits))
    if not (exact and bound_held(data, recon, eb)):
        raise SrnszError("internal error: the reconstruction breaks the error bound; please report this")


@one_blas_thread
def compress(array: Any, eb: float, mode: str = "rel", predictor: str = "interp", *, rel: float | None = None,
             progress: Progress | None = None, fill_value: float | Sequence[float] | None = None,
             valid_range: Sequence[float | None] | None = None, detect_fills: bool = True,
             metadata: VariableMeta | None = None, restoration: bool = True, profile: str = "best",
             region: Region | None = None, threads: int | None = None, parts: PartLayout = DEFAULT_LAYOUT,
             wavelet: bool = True, **options: Any) -> bytes:
    """Compress a float32/float64 array of 1-4 dimensions so that |x - x'| <= eb_abs for every valid value.

    eb, mode: the error bound (see :class:`srnsz.bounds.ErrorBound`; ``rel`` is a fraction of the value range
    of the valid values, ``abs`` is in data units). ``rel=`` gives the relative part of ``abs_and_rel``.
    predictor: a registered predictor name; ``options`` go to it (e.g. ``kind="linear"``, ``tune="off"``).
    Missing values (see :mod:`srnsz.missing`) come back bit for bit: NaN, Inf, ``fill_value`` (one value or a
    list), values outside ``valid_range`` = (min, max), and, unless ``detect_fills=False``, undeclared fills
    (a repeated extreme far outside the rest, e.g. 1e20); a masked array's masked points (:func:`unmasked`: they
    come back as its fill value). A resolved bound of 0 stores the data losslessly.
    metadata: a NetCDF/HDF5 variable's name, dimensions, attributes and coordinates (:mod:`srnsz.io.cf`), stored
    losslessly so that decompressing to a file restores them.
    restoration: in the psnr and ssim modes, let the stream carry a restoration filter (srnsz.restoration: fewer
    bits at the same quality on smooth fields, a pointwise bound up to 1.5x the one the quantizer held; format 1.6)
    where it pays.
    wavelet: in the psnr and ssim modes with the interp predictor, let the wavelet predictor's stream
    (srnsz.predictors.wavelet: fewer bits at low PSNR on smooth fields; format 1.15) compete; the smaller stream at the
    target is kept.
    profile: ``best`` (default) or ``fast`` (interp only: no trial compressions, a lighter coder; see PROFILES).
    region: where ``array`` sits in a larger one (a chunk; see :class:`Region`), recorded in the header.
    threads: the cores to use (None: those available). A large field (srnsz.decomposition.parts) of the interp
    predictor in a bound mode is coded in parts (format 1.11), compressed in as many worker processes and decoded in
    as many threads; a field in one stream has its levels' code tables coded side by side in as many threads; a
    predictor with a network (hat, ae) runs it on as many threads. The stream is the same bytes for every thread
    count.
    parts: how large fields are cut (:class:`srnsz.decomposition.parts.PartLayout`, no more parts than the stream's size
    estimated on a 256th of the field pays for; the stream records the cut).
    """
    if threads is not None and predictor in PREDICTORS and "threads" in PREDICTORS[predictor].options():
        options = {**options, "threads": threads}  # the network's inference threads, checked by the predictor
        create_predictor(predictor, **profile_options(profile, predictor, options))
    cores = check_threads(threads)
    options = profile_options(profile, predictor, options)
    array, fill_value = unmasked(array, fill_value)
    data = as_field(array)
    if region is not None and not isinstance(region, Region):
        raise InvalidInputError(f"region must be a srnsz.Region, not {type(region).__name__}")
    if region is not None and not region.fits(data.shape):
        raise InvalidInputError(f"region {region} does not hold an array of shape {data.shape}")
    bound = ErrorBound(mode, eb, rel)
    for widening in ("round_bias", "lone_slack"):
        if options.get(widening) and mode not in ("psnr", "ssim"):
            raise InvalidInputError(f"{widening} (widens the error beyond the bound it is given) is for the quality "
                                    "modes (psnr, ssim) only, which state the wider bound in the stream")
    rule = missing.MissingRule.of(fill_value, valid_range, detect_fills)
    found = missing.find_missing(data, rule)
    mask = found.mask
    eb_abs = bound.resolve(data, mask)
    if not np.isfinite(eb_abs):
        eb_abs = LARGEST_BOUND
    # Nothing valid to bound (or a bound of 0): every value is stored bit for bit.
    lossless = eb_abs == 0 or (mask is not None and mask.all())
    asked = create_predictor(predictor, **options)  # its options are checked even where the data is stored as is
    chosen = create_predictor("lossless") if lossless else asked
    if not chosen.holds_bound and mode not in ("psnr", "ssim"):
        raise InvalidInputError(f"the {predictor} predictor holds no pointwise bound of its own: it serves the quality "
                                "modes (mode='psnr' or 'ssim'), whose streams state the largest error they have")
    if not isinstance(parts, PartLayout):
        raise InvalidInputError(f"parts must be a PartLayout, not {type(parts).__name__}")
    keys = part_keys(data.shape, parts)
    if len(keys) > 1 and region is None and not lossless and predictor == "interp" and mode not in ("psnr", "ssim"):
        sections = {} if metadata is None else metadata.to_sections(_COORDINATES)
        in_parts = _Stream(data, bound, eb_abs, found, rule, sections, least_minor=_least_minor(options))
        keys = part_keys(data.shape, parts, parts.parts_for_bytes(in_parts.estimated_bytes(options)))
        if len(keys) > 1:
            return in_parts.in_parts(keys, options, cores, progress)
    if not chosen.lossy or mask is None:
        field, mask, side = data, None, {}  # stored bit for bit: no mask needed
    else:
        field, side = missing.extend_into_missing(data, mask), missing.encode(mask, data, options.get("binarisation"))
    if mode == "psnr" and chosen.lossy:
        eb_abs, encoded = compress_for_psnr(chosen, field, mask, float(eb), eb_abs, progress, restoration, wavelet)
    elif mode == "ssim" and chosen.lossy:
        eb_abs, encoded = compress_for_ssim(chosen, field, mask, float(eb), eb_abs, progress, restoration, wavelet)
    else:
        encoded = chosen.compress(field, eb_abs, progress, mask)
    sections = {} if metadata is None else metadata.to_sections(_COORDINATES)
    stream = _Stream(data, bound, eb_abs, found, rule, sections, region, _least_minor(options))
    candidates = [stream.finish(chosen.name, e, mask, side) for e in (encoded, *encoded.alternatives)]
    if chosen.lossy and data.size <= SMALL_FIELD:
        # On a handful of values the lossless layout can be the smaller one.
        candidates.append(stream.finish("lossless", create_predictor("lossless").compress(data, eb_abs), None, {}))
    return smallest(candidates)


def _least_minor(options: dict[str, Any]) -> int | None:
    """The lowest format minor a stream compressed with ``options`` is written in: COMPACT_MINOR (the compact
    framing), or none for the writer of formats 1.2-1.6 (``binarisation=1``), which reproduces their streams."""
    return None if options.get("binarisation") == BINARISATION_1.ident else COMPACT_MINOR


@dataclass(frozen=True)
class _Stream:
    """What every candidate stream of one compression shares: the input, its bound and missing values."""

    data: np.ndarray
    bound: ErrorBound
    eb_abs: float
    found: missing.Missing
    rule: missing.MissingRule
    metadata: dict[str, bytes]  # sections of the variable metadata ({} without)
    region: Region | None = None
    least_minor: int | None = None  # the lowest format minor the stream is written in (framing)

    def finish(self, name: str, encoded: Encoded, mask: np.ndarray | None, side: dict[str, bytes]) -> bytes:
        """The finished stream of ``encoded`` (made by predictor ``name``, missing points ``mask`` restored from
        ``side``), after checking its reconstruction against the bound."""
        data = self.data
        recon = encoded.recon
        if mask is not None:
            recon = recon.copy()
            recon[mask] = data[mask]
        _verify_bound(data, recon, self.eb_abs, self.found.mask)
        header = {
            "dtype": data.dtype.newbyteorder("<").str,
            "shape": list(data.shape),
            "error_bound": {**self.bound.to_json(), "abs": self.eb_abs},
            "predictor": {"name": encoded.predictor or name, "params": encoded.params},
            "numerics": {"device": "cpu", "compute_dtype": "float64", "numpy": np.__version__,
                         "constriction": _version("constriction"), "zstandard": _version("zstandard"),
                         **encoded.numerics},
            "checksum": {"algorithm": "crc32", "value": checksum(recon)},
            "created_by": f"srnsz {_version('srnsz')}",
        }
        if self.region is not None:
            header["region"] = self.region.to_json()
        if mask is not None:  # suspects alone are told to the user, not written: the stream stays 1.2
            header["missing"] = _missing_record(self.rule, self.found, mask, data.dtype)
        needed = [MISSING_FORMAT_MINOR if "missing" in header or self.metadata else None, encoded.format_minor,
                  missing.format_minor(side), coords.FORMAT_MINOR if coords.SECTION in self.metadata else None,
                  self.least_minor]
        minor = max((m for m in needed if m is not None), default=None)
        return write_container(header, {**encoded.sections, **side, **self.metadata}, minor)

    def part_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` for compressing a piece of the field alone: the whole field's missing-value rule with its
        detected fills declared."""
        return {**options, "fill_value": [*self.rule.fill_values, *self.found.detected], "detect_fills": False,
                "valid_range": (self.rule.valid_min, self.rule.valid_max)}

    def estimated_bytes(self, options: dict[str, Any]) -> float:
        """About the bytes of the field's stream: a central box of PART_SAMPLE_SHARE of it compressed alone (abs
        bound, ``options`` as a part's), its sections scaled up to the field by their valid values (smooth fields come
        out larger than they will be: a box has fewer coarse levels); inf (not known) where under
        PART_SAMPLE_MIN_VALID of the box is valid (a box over land)."""
        key = sample_key(self.data.shape, PART_SAMPLE_SHARE)
        sample = self.data[key]
        mask = self.found.mask
        valid = self.data.size if mask is None else self.data.size - int(np.count_nonzero(mask))
        valid_sample = sample.size if mask is None else sample.size - int(np.count_nonzero(mask[key]))
        if valid_sample < PART_SAMPLE_MIN_VALID * sample.size:
            return math.inf
        stream = compress(sample, self.eb_abs, "abs", "interp", **self.part_options(options))
        return (len(stream) - head_length(stream[:HEAD_PREFIX])) * valid / valid_sample

    def in_parts(self, keys: list[tuple[slice, ...]], options: dict[str, Any], threads: int,
                 progress: Progress | None) -> bytes:
        """The stream of the field coded in the parts ``keys`` (format 1.11, srnsz.format.parts), each compressed
        alone (abs bound, :meth:`part_options`) in up to ``threads`` worker processes, put together in order."""
        data, shape = self.data, self.data.shape
        jobs = [{**self.part_options(options), "threads": 1, "region": Region(tuple(k.start for k in key), shape)}
                for key in keys]
        _PART_JOBS[id(self)] = (data, self.eb_abs, keys, jobs)
        try:
            tasks = ((_compress_part, (id(self), number)) for number in range(len(keys)))
            streams = []
            # every part queued at once (they hold no data: the workers read it from _PART_JOBS, and what comes back
            # is a stream): a worker done with a fast part then takes the next one instead of waiting for a slow one
            with workers(min(threads, len(keys)), processes=True) as pool:
                for key, stream in zip(keys, in_order(pool, tasks, len(keys))):
                    streams.append(stream)
                    if progress:
                        progress(data[key].size)
        finally:
            del _PART_JOBS[id(self)]
        heads = [read_head(stream)[0] for stream in streams]
        crc = 0
        for key, head in zip(keys, heads):
            crc = parts.crc32_combine(crc, _checksum_record(head), data[key].nbytes)
        names = {str(head["predictor"]["name"]) for head in heads}
        header = {
            "dtype": data.dtype.newbyteorder("<").str,
            "shape": list(shape),
            "error_bound": {**self.bound.to_json(), "abs": self.eb_abs},
            "predictor": {"name": names.pop() if len(names) == 1 else "interp", "params": {}},
            "numerics": {"device": "cpu", "compute_dtype": "float64", "numpy": np.__version__,
                         "constriction": _version("constriction"), "zstandard": _version("zstandard")},
            "checksum": {"algorithm": "crc32", "value": crc},
            "created_by": f"srnsz {_version('srnsz')}",
            "parts": {"axis": 0, "starts": [key[0].start for key in keys]},
        }
        if self.found.mask is not None:
            header["missing"] = _missing_record(self.rule, self.found, self.found.mask, data.dtype)
        return write_container(header, {parts.SECTION: parts.pack_parts(streams), **self.metadata},
                               max(parts.FORMAT_MINOR, self.least_minor or 0))


# The fields being compressed in parts, by job: worker processes (fork) read their part from here, not from a copy
# sent to them.
_PART_JOBS: dict[int, tuple[np.ndarray, float, list[tuple[slice, ...]], list[dict[str, Any]]]] = {}


def _compress_part(job: int, number: int) -> bytes:
    """Part ``number`` of job ``job`` (see :meth:`_Stream.in_parts`) as a stream of its own."""
    data, eb_abs, keys, jobs = _PART_JOBS[job]
    return compress(data[keys[number]], eb_abs, "abs", "interp", **jobs[number])


def _missing_record(rule: missing.MissingRule, found: missing.Missing, mask: np.ndarray | None,
                    dtype: np.dtype) -> dict[str, Any]:
    """The header's record of the missing-value rule and what it found; values in their shortest form that is
    the same number in ``dtype`` (1e+20, not 1.0000000200408773e+20), empty entries left out (bytes count at
    ratios of several hundred)."""
    def short(values: Sequence[float]) -> list[float]:
        return [float(str(v)) for v in missing.representable(values, dtype)]

    record: dict[str, Any] = {"points": 0 if mask is None else int(np.count_nonzero(mask))}
    entries = {"fill_values": short(rule.fill_values), "detected": short(found.detected),
               "suspects": short(found.suspects)}
    record.update({k: v for k, v in entries.items() if v})
    record.update({k: v for k, v in rule.to_json().items() if k in ("valid_min", "valid_max")})
    return record


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's header says, plus sizes."""

    shape: tuple[int, ...]
    dtype: str
    error_bound: dict[str, Any]
    predictor: str
    predictor_params: dict[str, Any]
    compressed_bytes: int
    original_bytes: int
    format_version: str
    created_by: str
    missing: dict[str, Any] = field(default_factory=dict)  # the missing-value rule and what it found (header)
    restoration: bool = False  # the decoder runs a restoration filter on the reconstruction (srnsz.restoration)
    region: Region | None = None  # where the field sits in a larger array (a chunk of a chunked stream)
    parts: int = 1  # streams coded apart, decoded side by side (format 1.11; srnsz.decomposition.parts)

    @property
    def ratio(self) -> float:
        """Compression ratio: original bytes / stream bytes."""
        return self.original_bytes / self.compressed_bytes


def _parse_header(header: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype, float, str, dict]:
    try:
        dtype = DTYPES[header["dtype"]]
        shape = tuple(whole_number(n) for n in header["shape"])
        eb = float(header["error_bound"]["abs"])
        name = str(header["predictor"]["name"])
        params = dict(header["predictor"]["params"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise StreamFormatError("the header lacks or garbles a required field (dtype, shape, bound, predictor)") \
            from None
    if not 1 <= len(shape) <= MAX_NDIM or min(shape) < 1 or max(shape) > MAX_SIDE:
        raise StreamFormatError(f"the header's shape {list(shape)[:MAX_NDIM + 1]} is invalid")
    if not np.isfinite(eb) or eb < 0:
        raise StreamFormatError(f"the header's bound {eb} is invalid")
    _checksum_record(header)
    if name not in PREDICTORS:
        raise StreamFormatError(f"the stream needs predictor {name!r}, which this srnsz does not have")
    return shape, dtype, eb, name, params


def _checksum_record(header: dict[str, Any]) -> int:
    """The CRC32 the header records for the reconstruction (every stream has one)."""
    record = header.get("checksum")
    try:
        if record["algorithm"] != "crc32":
            raise ValueError(record["algorithm"])
        value = whole_number(record["value"])
    except (KeyError, TypeError, ValueError):
        raise StreamFormatError(f"the header's reconstruction checksum {record!r} is missing or garbled") from None
    if not 0 <= value < 1 << 32:
        raise StreamFormatError(f"the header's reconstruction checksum {value} is not a CRC32")
    return value


def _predictor_for(name: str, params: dict[str, Any], runtime: Runtime | None = None) -> Predictor:
    """The predictor a header's parameters describe (its networks run on ``runtime``); parameters it cannot take are
    a damaged stream."""
    try:
        return PREDICTORS[name].from_params(params, runtime)
    except SrnszError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise StreamFormatError(f"the {name} predictor parameters are invalid ({exc})") from None


def _region_header(header: dict[str, Any], shape: tuple[int, ...]) -> Region | None:
    """The header's region record (None when absent), checked to hold the field."""
    if "region" not in header:
        return None
    region = Region.from_json(header["region"])
    if not region.fits(shape):
        raise StreamFormatError(f"the header's region {region} does not hold its shape {list(shape)}")
    return region


def _missing_header(header: dict[str, Any]) -> dict[str, Any]:
    """The header's missing-value record ({} when absent), its point count checked."""
    record = header.get("missing", {})
    if not isinstance(record, dict):
        raise StreamFormatError("the header's missing-value record is not an object")
    points = record.get("points", 0)
    if not isinstance(points, int) or isinstance(points, bool) or points < 0:
        raise StreamFormatError(f"the header's missing-value count {points!r} is invalid")
    for key in ("fill_values", "detected", "suspects"):
        values = record.get(key, [])
        if not isinstance(values, list) or not all(_finite_number(v) for v in values):
            raise StreamFormatError(f"the header's missing-value {key} {values!r} are not finite numbers")
    for key in ("valid_min", "valid_max"):
        if key in record and not _finite_number(record[key]):
            raise StreamFormatError(f"the header's missing-value {key} {record[key]!r} is not a finite number")
    return dict(record)


def _finite_number(value: Any) -> bool:
    """Whether a header's value is a finite number (an int past 64 bits counts as a number numpy cannot take)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return bool(np.isfinite(value))
    except (TypeError, OverflowError):
        return False


def _as_bytes(data: Any) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"expected compressed bytes, got {type(data).__name__}")
    return bytes(data)


def info(data: bytes) -> StreamInfo:
    """Describe a compressed stream without decoding it."""
    raw = _as_bytes(data)
    container = read_container(raw)
    shape, dtype, _, name, params = _parse_header(container.header)
    count = 1
    if _in_parts(container):
        count = len(_opened_parts(container, shape, dtype))
    else:
        check_capacity(container.sections, shape, dtype.itemsize)
        _predictor_for(name, params).check_sections(container.sections, params, shape, dtype)
    h = container.header
    return StreamInfo(shape, h["dtype"], dict(h["error_bound"]), name, params, len(raw),
                      math.prod(shape) * dtype.itemsize, f"{container.version[0]}.{container.version[1]}",
                      str(h.get("created_by", "")), _missing_header(h), restoration.SECTION in container.sections,
                      _region_header(h, shape), count)


def check_header(header: dict[str, Any], *, shape: tuple[int, ...] | None = None, dtype: np.dtype | None = None,
                 region: Region | None = None) -> None:
    """Refuse (StreamFormatError) a stream header (as :func:`srnsz.format.container.read_head` gives it) that is
    garbled or describes another field than ``shape``, ``dtype`` and ``region`` (where given; see
    :func:`decompress`)."""
    parsed_shape, parsed_dtype, *_ = _parse_header(header)
    _check_expected(header, parsed_shape, parsed_dtype, region, shape, dtype)


def _check_expected(header: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype, region: Region | None,
                    expected_shape: tuple[int, ...] | None, expected_dtype: np.dtype | None) -> None:
    """Refuse a stream whose header differs from what its caller expects (see :func:`decompress`)."""
    if expected_shape is not None and tuple(expected_shape) != shape:
        raise StreamFormatError(f"the stream holds shape {list(shape)}, expected {list(expected_shape)}")
    if expected_dtype is not None and np.dtype(expected_dtype) != dtype:
        raise StreamFormatError(f"the stream holds {dtype}, expected {np.dtype(expected_dtype)}")
    recorded = _region_header(header, shape)
    if region is not None and recorded != region:
        raise StreamFormatError(f"the stream holds the region {recorded}, expected {region}" if recorded is not None
                                else f"the stream records no region, expected {region}")


def variable_metadata(data: bytes) -> VariableMeta | None:
    """The NetCDF/HDF5 variable metadata a stream carries (see :func:`compress`), or None."""
    container = read_container(_as_bytes(data))
    if coords.SECTION in container.sections and container.version[1] < coords.FORMAT_MINOR:
        raise StreamFormatError(f"section {coords.SECTION} is not part of format {container.version[0]}."
                                f"{container.version[1]} (damaged stream)")
    return VariableMeta.from_sections(container.sections, _COORDINATES)


@one_blas_thread
def decompress(data: bytes, progress: Progress | None = None, *, region: Region | None = None,
               shape: tuple[int, ...] | None = None, dtype: np.dtype | None = None, device: str = "auto",
               threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a stream made by :func:`compress`; returns the reconstruction (shape and dtype as compressed).

    region, shape, dtype: what the caller expects (a chunk of a chunked stream: its place, extent and type); a stream
    whose header says otherwise is refused before decoding. device (auto | cpu | cuda[:n]) and threads (None: the
    cores available) say where a stream's networks run (hat, ae); every choice gives the same bits in streams of
    format 1.16 on, the same bits on the kind of machine that made it in 1.9-1.15 (:func:`info` says where a
    stream decodes); streams before format 1.9 use what they recorded instead. A stream in parts (format 1.11)
    decodes its parts side by side on ``threads`` threads. out: a C-contiguous array of the stream's shape and dtype
    to decode into (returned).
    Raises StreamFormatError for damaged or unsupported streams and ReconstructionMismatchError when the
    result differs from the reconstruction the compressor verified.
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InvalidInputError(f"threads must be a positive integer or None, got {threads!r}")
    check_device(device)
    container = read_container(_as_bytes(data))
    expected_shape, expected_dtype = shape, dtype
    shape, dtype, eb, name, params = _parse_header(container.header)
    _check_expected(container.header, shape, dtype, region, expected_shape, expected_dtype)
    if out is not None and (not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray)
                            or out.shape != shape or out.dtype != dtype
                            or not out.flags.c_contiguous or not out.flags.writeable):
        raise InvalidInputError(f"out must be a writable C-contiguous {dtype} array of shape {shape} (not masked)")
    if _in_parts(container):
        return _decompress_parts(container, shape, dtype, check_threads(threads), progress, out)
    check_capacity(container.sections, shape, dtype.itemsize)  # before anything of the claimed size is allocated
    predictor = _predictor_for(name, params, Runtime(device, threads))
    predictor.check_sections(container.sections, params, shape, dtype)
    recorded = container.header.get("numerics")
    try:
        if out is None:
            recon = predictor.decompress(container.sections, params, shape, dtype, eb, progress)
        else:
            recon = predictor.decompress_into(out, container.sections, params, eb, progress)
        if restoration.SECTION in container.sections:
            if container.version[1] < restoration.FORMAT_MINOR:
                raise StreamFormatError(f"section {restoration.SECTION} is not part of format "
                                        f"{container.version[0]}.{container.version[1]} (damaged stream)")
            recon = restoration.apply_restoration(recon, restoration.RestorationFilter.from_bytes(
                container.sections[restoration.SECTION], len(shape)))
            if out is not None:
                out[...] = recon
                recon = out
        points = _missing_header(container.header).get("points", 0)
        if points:
            mask, values = missing.decode(container.sections, shape, dtype, points)
            recon[mask] = values
    except ReconstructionMismatchError as exc:
        raise ReconstructionMismatchError(f"{exc}; the stream was made with different numerics or is damaged: "
                                          + str(recorded)) from None
    except SrnszError:
        raise
    except KeyError as exc:
        raise StreamFormatError(f"the stream lacks section {exc}") from None
    except (ValueError, IndexError, TypeError, ArithmeticError, RecursionError) as exc:
        raise StreamFormatError(f"the stream is corrupted ({exc})") from None
    except MemoryError:
        raise StreamFormatError("the stream asks for more memory than its shape allows (damaged)") from None
    if checksum(recon) != _checksum_record(container.header):
        network = ("; its predictions come from a network whose float64 torch kernels differ between kinds of CPU "
                   "even for the same torch: decode it on the kind of machine that compressed it"
                   if isinstance(recorded, dict) and "torch" in recorded else "")
        raise ReconstructionMismatchError(
            "the decoded data differs from what the compressor verified (checksum mismatch); the stream is "
            "damaged or was made with different numerics: " + str(recorded) + network)
    return recon


def _in_parts(container: Container) -> bool:
    """Whether a stream is coded in parts (format 1.11); a parts record or section in an older stream is damage."""
    if parts.SECTION not in container.sections and "parts" not in container.header:
        return False
    if container.version[1] < parts.FORMAT_MINOR:
        raise StreamFormatError(f"parts are not part of format {container.version[0]}.{container.version[1]} "
                                "(damaged stream)")
    return True


def _opened_parts(container: Container, shape: tuple[int, ...], dtype: np.dtype
                  ) -> list[tuple[tuple[slice, ...], Region, memoryview]]:
    """(index, region, stream) of each part of a stream coded in parts, every part's header and capacity
    checked against its place and its checksum against the stream's, before anything of the field's size is
    allocated."""
    record = container.header.get("parts")
    starts = record.get("starts") if isinstance(record, dict) else None
    if not valid_starts(starts, shape) or record != {"axis": 0, "starts": starts} \
            or parts.SECTION not in container.sections:
        raise StreamFormatError(f"the stream's parts {str(record)[:200]} do not cut its shape {list(shape)}")
    keys = keys_of(starts, shape)
    opened = []
    crc = 0
    for number, (key, stream) in enumerate(zip(keys, parts.unpack_parts(container.sections[parts.SECTION],
                                                                        len(keys)))):
        place = Region(tuple(k.start for k in key), shape)
        extent = tuple(k.stop - k.start for k in key)
        try:
            part = read_container(bytes(stream))
            if "parts" in part.header or parts.SECTION in part.sections:
                raise StreamFormatError("a part is itself in parts")
            check_header(part.header, shape=extent, dtype=dtype, region=place)
            check_capacity(part.sections, extent, dtype.itemsize)
        except StreamFormatError as exc:
            raise StreamFormatError(f"part {number}: {exc}") from None
        crc = parts.crc32_combine(crc, _checksum_record(part.header), math.prod(extent) * dtype.itemsize)
        opened.append((key, place, stream))
    if crc != _checksum_record(container.header):
        raise StreamFormatError("the parts' reconstruction checksums do not make the stream's (damaged stream)")
    return opened


def _decompress_parts(container: Container, shape: tuple[int, ...], dtype: np.dtype, threads: int,
                      progress: Progress | None, out: np.ndarray | None = None) -> np.ndarray:
    """The field of a stream coded in parts, decoded in up to ``threads`` threads (the compiled coder releases the
    GIL), each writing its part into the result."""
    opened = _opened_parts(container, shape, dtype)
    _missing_header(container.header)  # the parts restore their own missing values; the record must still be sound
    if out is None:
        out = np.empty(shape, dtype)

    def decode(number: int, key: tuple[slice, ...], place: Region, stream: memoryview) -> int:
        try:
            decompress(bytes(stream), region=place, shape=out[key].shape, dtype=dtype, threads=1, out=out[key])
        except StreamFormatError as exc:
            raise StreamFormatError(f"part {number}: {exc}") from None
        return out[key].size

    # every part queued at once (each decodes into its place in ``out``): with a window of ``threads``, a thread done
    # with a part waited for the oldest part still running (parts coded by context mixing take ~4x as long as parts
    # coded by the static coder) before it was given another
    tasks = ((decode, (number, *part)) for number, part in enumerate(opened))
    with workers(min(threads, len(opened)), processes=False) as pool:
        for size in in_order(pool, tasks, len(opened)):
            if progress:
                progress(size)
    return out


class Codec:
    """A compressor configured once and used for many arrays: ``Codec(1e-3).compress(x)``.

    Takes the arguments of :func:`compress`, missing-value rule included (``fill_value``, ``valid_range``,
    ``detect_fills``); ``threads`` (None: the cores available) serves both ways."""

    def __init__(self, eb: float, mode: str = "rel", predictor: str = "interp", *, rel: float | None = None,
                 fill_value: float | Sequence[float] | None = None, valid_range: Sequence[float | None] | None = None,
                 detect_fills: bool = True, profile: str = "best", threads: int | None = None,
                 parts: PartLayout = DEFAULT_LAYOUT, restoration: bool = True, wavelet: bool = True,
                 **options: Any) -> None:
        check_threads(threads)
        self.threads, self.parts = threads, parts
        self.restoration, self.wavelet = bool(restoration), bool(wavelet)
        ErrorBound(mode, eb, rel)  # validate now, not at the first call
        missing.MissingRule.of(fill_value, valid_range, detect_fills)
        create_predictor(predictor, **profile_options(profile, predictor, options))
        self.eb, self.mode, self.predictor, self.rel = eb, mode, predictor, rel
        self.options = {**options, "profile": profile}
        self.missing = {"fill_value": fill_value, "valid_range": valid_range, "detect_fills": detect_fills}

    def compress(self, array: Any) -> bytes:
        """The stream of ``array`` at this codec's bound and options (:func:`compress`)."""
        return compress(array, self.eb, self.mode, self.predictor, rel=self.rel, threads=self.threads,
                        parts=self.parts, restoration=self.restoration, wavelet=self.wavelet, **self.missing,
                        **self.options)

    def decompress(self, data: bytes) -> np.ndarray:
        """The array a stream holds (:func:`decompress`; the stream carries its own settings)."""
        return decompress(data, threads=self.threads)

    def __repr__(self) -> str:
        return (f"Codec(eb={self.eb}, mode={self.mode!r}, predictor={self.predictor!r}, missing={self.missing}, "
                f"options={self.options}, threads={self.threads})")


# Coordinates coded as streams of their own (srnsz.format.coords), compressed at an absolute bound.
_COORDINATES = coords.CoordinateCodec(lambda values, eb: compress(values, eb, "abs"), lambda stream: decompress(stream))
