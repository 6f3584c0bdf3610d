"""Chunked streams: arrays larger than memory, compressed one chunk at a time.

A chunked stream is a file (or bytes)::

    magic  8 bytes  b"\\x89SRNSZC\\n"
    chunks          one ordinary srnsz stream per chunk, back to back, C order of the chunk grid; since layout
                    1.1 each chunk's header records its place (``region``: origin and the array's shape)
    index           zstd frame of JSON {"version": [1, 1], "shape", "dtype", "chunk", "error_bound",
                    "chunks": [[offset, length], ...]}, with the frame's content checksum since 1.1 (no
                    "version": 1.0, written before it was recorded)
    footer 16 bytes u64 index length, 8 bytes b"SRNSZIDX"

The layout is versioned apart from the chunks' streams (docs/format.md, "Chunked streams"): a reader refuses
another major version and a newer minor one. Reading the index checks it whole before anything the size of the
array is allocated: its checksum, a chunk count that fits the shape, spans that tile the file between the magic and
the index exactly, and each chunk's header (read alone) holding its region's shape, the dtype and, since 1.1, the
region itself; so a damaged or crafted index is an error, never chunks decoded into each other's places.

Every chunk is compressed with the same absolute bound (a relative bound is resolved on the whole array's
range first, in one streaming pass), so the bound holds on every value. Reading the footer and one chunk's
bytes decodes that chunk without touching the others.

Peak memory is one chunk's working set, whatever the array size. A file-backed array (np.memmap: .npy and raw
inputs, .npy outputs) is read and written region by region with pread/pwrite on its file, never through the
map: touching a map makes whole page-cache folios resident (on ext4 with large folios, a 64^3 chunk of a
512x512-plane field mapped 37-64 MB), while positional I/O keeps the file's pages in the kernel's cache,
outside the process.
"""

from __future__ import annotations

import json
import math
import mmap
import numbers
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import zstandard

from srnsz import api
from srnsz.bounds import ErrorBound
from srnsz.coding import lossless
from srnsz.decomposition.tiling import chunk_keys
from srnsz.errors import InvalidInputError, SrnszError, StreamFormatError
from srnsz.format.container import HEAD_PREFIX, head_length, read_head
from srnsz.missing import Extremes, MissingRule, detect_fills
from srnsz.parallel import check_threads, in_order, workers
from srnsz.predictors.base import Progress

CHUNKED_MAGIC = b"\x89SRNSZC\n"
CHUNKED_VERSION = (1, 1)  # 1.1: the index's checksum and each chunk's region in its header
MAX_INDEX_BYTES = 1 << 30
FOOTER_MAGIC = b"SRNSZIDX"
_FOOTER = struct.Struct("<Q8s")


@dataclass(frozen=True)
class ChunkIndex:
    """What the footer of a chunked stream says."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunk: tuple[int, ...]
    error_bound: dict[str, Any]
    spans: list[tuple[int, int]]  # (offset, length) of each chunk's stream, C order of the chunk grid
    version: tuple[int, int] = CHUNKED_VERSION

    @cached_property
    def regions(self) -> list[tuple[slice, ...]]:
        """The array region of each chunk, in stream order."""
        return list(chunk_keys(self.shape, self.chunk))

    def placement(self, number: int) -> api.Region | None:
        """The region chunk ``number``'s header must record (None for layout 1.0, whose chunks record none)."""
        if self.version < (1, 1):
            return None
        return api.Region(tuple(k.start for k in self.regions[number]), self.shape)

    def extent(self, number: int) -> tuple[int, ...]:
        """The shape of chunk ``number``."""
        return tuple(k.stop - k.start for k in self.regions[number])


def is_chunked(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file or stream) starts a chunked stream."""
    return head[:len(CHUNKED_MAGIC)] == CHUNKED_MAGIC


def release_pages(array: Any) -> None:
    """Drop the resident pages of a memory-mapped array (np.memmap) after use, so reading or writing a large
    file through a map keeps memory at a few chunks; other arrays are left alone."""
    mapping = getattr(array, "_mmap", None)
    if mapping is None or not hasattr(mapping, "madvise"):
        return
    if getattr(array, "mode", "r") != "r":
        array.flush()  # written pages go to the file before they are dropped
    mapping.madvise(mmap.MADV_DONTNEED)


class FileRegions:
    """Regions of a C-order array stored at byte ``offset`` of a file, read and written with pread/pwrite
    (one call per contiguous run), so no page of the file is mapped into the process."""

    def __init__(self, path: str | Path, offset: int, shape: tuple[int, ...], dtype: np.dtype, writable: bool):
        self.shape, self.dtype, self.offset = tuple(shape), np.dtype(dtype), int(offset)
        self._fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)

    @classmethod
    def of(cls, array: Any, writable: bool = False) -> FileRegions | None:
        """The file regions of a whole, C-contiguous, shared np.memmap (not a view of one, not copy-on-write,
        whose file then holds exactly what the array holds); None for anything else."""
        if not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename
                and array.flags.c_contiguous and array.size and array.mode in (("r+", "w+") if writable
                                                                                else ("r", "r+", "w+"))):
            return None
        return cls(array.filename, array.offset, array.shape, array.dtype, writable)

    def close(self) -> None:
        """Closes the file."""
        os.close(self._fd)

    def __enter__(self) -> FileRegions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _runs(self, key: tuple[slice, ...]) -> tuple[tuple[int, ...], np.ndarray, int]:
        """(region shape, byte offset of each contiguous run, run bytes) of ``key`` (slices with step 1)."""
        region = tuple(len(range(*k.indices(n))) for k, n in zip(key, self.shape))
        starts = [k.indices(n)[0] for k, n in zip(key, self.shape)]
        strides = np.cumprod((1, *self.shape[:0:-1]))[::-1]  # elements, C order
        axis = len(self.shape) - 1  # the run covers this axis partly and every later axis whole
        while axis > 0 and region[axis] == self.shape[axis]:
            axis -= 1
        first = sum(s * st for s, st in zip(starts, strides))
        offsets = np.zeros((), np.int64)
        for a in range(axis):
            offsets = np.add.outer(offsets, np.arange(region[a], dtype=np.int64) * int(strides[a]))
        run = int(np.prod(region[axis:])) * self.dtype.itemsize
        return region, (self.offset + (first + offsets.ravel()) * self.dtype.itemsize), run

    def _rows(self, key: tuple[slice, ...], block: np.ndarray) -> Iterator[tuple[memoryview, int]]:
        """(bytes of ``block`` for one contiguous run, its file position) for every run of ``key``."""
        region, offsets, run = self._runs(key)
        if block.shape != region:
            raise InvalidInputError(f"block {block.shape} does not fit region {region}")
        rows = block.reshape(-1).view(np.uint8).reshape(len(offsets), run) if block.size else block
        for row, position in zip(rows, offsets.tolist()):
            yield memoryview(row), position

    def read(self, key: tuple[slice, ...]) -> np.ndarray:
        """The region ``key`` (slices with step 1) as a new array."""
        block = np.empty(self._runs(key)[0], self.dtype)
        for view, position in self._rows(key, block):
            done = 0
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], position + done)
                if got <= 0:
                    raise InvalidInputError("the input file is shorter than its shape says")
                done += got
        return block

    def write(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        """Writes ``block`` into the region ``key`` (slices with step 1) of the file."""
        for view, position in self._rows(key, np.ascontiguousarray(block, self.dtype)):
            done = 0
            while done < len(view):
                done += os.pwritev(self._fd, [view[done:]], position + done)


Reader = Callable[[tuple[slice, ...]], np.ndarray]
Writer = Callable[[tuple[slice, ...], np.ndarray], None]


def _reader(array: Any, files: FileRegions | None) -> Reader:
    """key -> numpy block of ``array``: through ``files`` when given, else by slicing (then the pages of a
    memory-mapped view are released after each read)."""
    if files is not None:
        return files.read

    def read(key: tuple[slice, ...]) -> np.ndarray:
        block = np.array(array[key])
        release_pages(array)
        return block
    return read


def _writer(array: Any, files: FileRegions | None) -> Writer:
    """(key, block) -> None writing into ``array``: through ``files`` when given, else by slice assignment (then
    the pages of a memory-mapped array are released after each write). Mirrors :func:`_reader`."""
    if files is not None:
        return files.write

    def write(key: tuple[slice, ...], block: np.ndarray) -> None:
        array[key] = block
        release_pages(array)
    return write


def _check_chunk(shape: tuple[int, ...], chunk: tuple[int, ...]) -> tuple[int, ...]:
    chunk = tuple(int(c) for c in chunk)
    if len(chunk) != len(shape) or any(c < 1 for c in chunk):
        raise InvalidInputError(f"chunk {chunk} must give a positive size for each of the {len(shape)} axes")
    return chunk


def _global_bound(read: Reader, bound: ErrorBound, keys: list[tuple[slice, ...]],
                  rule: MissingRule) -> tuple[float, tuple[float, ...]]:
    """(absolute bound, undeclared fills detected on the whole array). A relative bound is resolved in one
    streaming pass over the valid values (a chunk in memory at a time); an abs bound needs no pass, and each chunk
    then detects its own fills."""
    if bound.mode in ("psnr", "ssim"):
        raise InvalidInputError(f"chunked compression takes abs, rel or abs_and_rel bounds ({bound.mode} is a "
                                "whole-field goal)")
    if bound.mode == "abs":
        return float(bound.value), ()
    extremes: Extremes | None = None
    for key in keys:
        block = read(key)
        mask = rule.declared_mask(block)
        part = Extremes.of(block[~mask] if mask.any() else block).profile()
        extremes = part if extremes is None else extremes.merge(part)
    if extremes is None:
        return bound.absolute(0.0), ()
    fills = detect_fills(extremes)[0] if rule.detect else ()
    return bound.absolute(extremes.span(fills)), fills


def _compress_block(block: np.ndarray, eb_abs: float, predictor: str, options: dict[str, Any]) -> bytes:
    """One chunk's stream (module level: worker processes run it)."""
    return api.compress(block, eb_abs, "abs", predictor, **options)


def _index_frame(index: ChunkIndex) -> bytes:
    """The index as written: a zstd frame (with its content checksum) of the JSON record."""
    return zstandard.ZstdCompressor(level=9, write_checksum=True).compress(json.dumps({
        "version": list(CHUNKED_VERSION), "shape": list(index.shape), "dtype": index.dtype.newbyteorder("<").str,
        "chunk": list(index.chunk), "error_bound": index.error_bound,
        "chunks": [list(s) for s in index.spans]}).encode())


def compress_chunked(array: Any, out: BinaryIO, eb: float, mode: str = "abs", chunk: tuple[int, ...] = (),
                     predictor: str = "interp", *, rel: float | None = None, progress: Progress | None = None,
                     fill_value: float | Sequence[float] | None = None,
                     valid_range: Sequence[float | None] | None = None, detect_fills: bool = True,
                     threads: int = 1, **options: Any) -> ChunkIndex:
    """Compress ``array`` (anything sliceable to numpy: np.memmap, h5py/zarr dataset) chunk by chunk to ``out``.

    chunk: block shape (elements per axis). Reads a few chunks at a time, so memory stays a few chunks.
    fill_value, valid_range, detect_fills: the missing-value rule (see :func:`srnsz.compress`); a relative bound
    is relative to the valid values of the whole array. threads: chunks compressed at once (worker processes);
    the bytes are the same for every thread count. Returns the index written to the footer.
    """
    threads = check_threads(threads)
    array, fill_value = api.unmasked(array, fill_value)
    shape = tuple(int(n) for n in array.shape)
    dtype = np.dtype(array.dtype)
    api.check_field(dtype, shape)
    chunk = _check_chunk(shape, chunk)
    keys = list(chunk_keys(shape, chunk))
    bound = ErrorBound(mode, eb, rel)
    rule = MissingRule.of(fill_value, valid_range, detect_fills)
    with FileRegions.of(array) or nullcontext() as files:
        read = _reader(array, files)
        eb_abs, detected = _global_bound(read, bound, keys, rule)
        # Fills found on the whole array are declared to every chunk, so each masks the same values.
        per_chunk = {"fill_value": [*rule.fill_values, *detected], "detect_fills": rule.detect and not detected,
                     "valid_range": (rule.valid_min, rule.valid_max)}
        out.write(CHUNKED_MAGIC)
        offset = len(CHUNKED_MAGIC)
        spans = []
        if predictor == "interp":  # the chunks are the parallel work: each codes its tables on one thread
            per_chunk["threads"] = 1
        tasks = ((_compress_block, (read(key), eb_abs, predictor, {
            **per_chunk, **options, "region": api.Region(tuple(k.start for k in key), shape)})) for key in keys)
        with workers(threads, processes=True) as pool:
            for key, stream in zip(keys, in_order(pool, tasks, threads)):
                out.write(stream)
                spans.append((offset, len(stream)))
                offset += len(stream)
                if progress:
                    progress(int(np.prod([s.stop - s.start for s in key])))
    index = ChunkIndex(shape, dtype, chunk, {**bound.to_json(), "abs": eb_abs}, spans)
    body = _index_frame(index)
    out.write(body)
    out.write(_FOOTER.pack(len(body), FOOTER_MAGIC))
    return index


def read_index(src: BinaryIO) -> ChunkIndex:
    """Parse and check the footer, the index and every chunk's header of a chunked stream open for reading
    (seekable); any damage, or an index that does not describe the file, is a StreamFormatError. Reads the index
    and one header per chunk, allocates nothing the size of the array."""
    src.seek(0, 2)
    size = src.tell()
    src.seek(0)
    if size < len(CHUNKED_MAGIC) + _FOOTER.size or not is_chunked(src.read(len(CHUNKED_MAGIC))):
        raise StreamFormatError("not a chunked srnsz stream (bad magic bytes)")
    src.seek(size - _FOOTER.size)
    length, magic = _FOOTER.unpack(src.read(_FOOTER.size))
    if magic != FOOTER_MAGIC or length > min(size - _FOOTER.size - len(CHUNKED_MAGIC), MAX_INDEX_BYTES):
        raise StreamFormatError("the chunked stream is truncated or its footer is corrupted")
    end = size - _FOOTER.size - length
    src.seek(end)
    index = _parse_index(src.read(length))
    _check_spans(index, end)
    for number in range(len(index.spans)):
        _check_chunk_header(src, index, number)
    return index


def _parse_index(blob: bytes) -> ChunkIndex:
    """The index record of a chunked stream, its checksum and fields checked, its chunk count against its shape."""
    try:
        meta = json.loads(lossless.unpack(blob, "chunk index", MAX_INDEX_BYTES))
        major, minor = (int(v) for v in meta.get("version", (1, 0)))
        if (major, minor) > CHUNKED_VERSION or major != CHUNKED_VERSION[0]:
            raise StreamFormatError(f"chunked stream layout {major}.{minor} is not supported by this srnsz (reads "
                                    f"{CHUNKED_VERSION[0]}.0-{CHUNKED_VERSION[0]}.{CHUNKED_VERSION[1]})")
        if (major, minor) >= (1, 1) and not zstandard.get_frame_parameters(blob).has_checksum:
            raise StreamFormatError("the chunk index has lost its checksum (corrupted)")
        if meta["dtype"] not in ("<f4", "<f8"):
            raise ValueError(f"dtype {meta['dtype']!r}")
        shape = tuple(api.whole_number(n) for n in meta["shape"])
        if not 1 <= len(shape) <= api.MAX_NDIM or min(shape) < 1:
            raise ValueError(f"shape {shape}")
        chunk = _check_chunk(shape, tuple(api.whole_number(n) for n in meta["chunk"]))
        spans = [(api.whole_number(o), api.whole_number(n)) for o, n in meta["chunks"]]
        error_bound = dict(meta["error_bound"])
    except StreamFormatError:
        raise
    except (ValueError, KeyError, TypeError, OverflowError, AttributeError, InvalidInputError, zstandard.ZstdError,
            RecursionError):
        raise StreamFormatError("the chunk index of the chunked stream is corrupted") from None
    count = math.prod(-(-n // c) for n, c in zip(shape, chunk))
    if count != len(spans):
        raise StreamFormatError(f"the chunk index lists {len(spans)} chunks, its shape {list(shape)} in chunks of "
                                f"{list(chunk)} has {count:.4g}")
    return ChunkIndex(shape, np.dtype(meta["dtype"]), chunk, error_bound, spans, (major, minor))


def _check_spans(index: ChunkIndex, end: int) -> None:
    """The chunks' streams must tile the file from the magic to the index, in order, each long enough for a header."""
    position = len(CHUNKED_MAGIC)
    for offset, length in index.spans:
        if offset != position or length < HEAD_PREFIX:
            raise StreamFormatError("the chunk index does not match the stream (its chunks do not follow each other "
                                    "from the start of the file)")
        position += length
    if position != end:
        raise StreamFormatError("the chunk index does not match the stream (its chunks do not end where it starts)")


def _check_chunk_header(src: BinaryIO, index: ChunkIndex, number: int) -> None:
    """Chunk ``number``'s header (read alone) must describe its region: shape, dtype and (layout 1.1) place."""
    offset, length = index.spans[number]
    src.seek(offset)
    prefix = src.read(HEAD_PREFIX)
    try:
        head = head_length(prefix)
        if head > length - HEAD_PREFIX:
            raise StreamFormatError("its header runs past its end")
        header, _ = read_head(prefix + src.read(head))
        api.check_header(header, shape=index.extent(number), dtype=index.dtype, region=index.placement(number))
    except SrnszError as exc:
        raise StreamFormatError(f"chunk {number} does not match the chunk index: {exc}") from None


def chunk_stream(src: BinaryIO, index: ChunkIndex, number: int) -> bytes:
    """The srnsz stream of chunk ``number`` (C order of the chunk grid)."""
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise InvalidInputError(f"a chunk number is a whole number, got {number!r}")
    if not 0 <= number < len(index.spans):
        raise InvalidInputError(f"chunk {number} does not exist (the stream has {len(index.spans)})")
    offset, length = index.spans[number]
    src.seek(offset)
    return src.read(length)


def read_chunk(src: BinaryIO, index: ChunkIndex, number: int) -> np.ndarray:
    """Decode chunk ``number`` (C order of the chunk grid) alone."""
    return _decode_chunk(chunk_stream(src, index, number), index, number)


def _decode_chunk(stream: bytes, index: ChunkIndex, number: int, write: Writer | None = None) -> np.ndarray:
    """Chunk ``number`` decoded from ``stream``, whose header must match the index (checked before decoding); also
    written with ``write`` when given (by the thread that decodes it)."""
    try:
        block = api.decompress(stream, shape=index.extent(number), dtype=index.dtype, region=index.placement(number))
    except StreamFormatError as exc:
        raise StreamFormatError(f"chunk {number}: {exc}") from None
    if write is not None:
        write(index.regions[number], block)
    return block


def decompress_chunked(src: BinaryIO, out: Any = None, progress: Progress | None = None, threads: int = 1) -> Any:
    """Decode every chunk into ``out`` (an array-like with shape, dtype and slice assignment: a new array when
    None, np.lib.format.open_memmap or an h5py dataset when the result need not fit in memory; a memmap's
    file is written with pwrite, not through the map). threads: chunks decoded at once (threads: the compiled
    coder runs without the GIL)."""
    threads = check_threads(threads)
    index = read_index(src)
    if out is None:
        out = np.empty(index.shape, index.dtype)
    elif out.shape != index.shape or out.dtype != index.dtype:
        raise InvalidInputError(f"output array must be {index.dtype} {index.shape}, got {out.dtype} {out.shape}")
    with FileRegions.of(out, writable=True) or nullcontext() as files, workers(threads, processes=False) as pool:
        write = _writer(out, files)
        # disjoint regions of an array in memory: each worker writes its block (numpy copies without the GIL), so
        # the copies and the first touch of the output's pages run on every thread, not only here
        in_workers = pool is not None and files is None and type(out) is np.ndarray
        tasks = ((_decode_chunk, (chunk_stream(src, index, number), index, number, write if in_workers else None))
                 for number in range(len(index.regions)))
        for key, block in zip(index.regions, in_order(pool, tasks, threads)):
            if not in_workers:
                write(key, block)
            if progress:
                progress(block.size)
    return out


def compress_file(array: Any, path: str | Path, **kwargs: Any) -> ChunkIndex:
    """:func:`compress_chunked` into ``path`` (written in place; callers wanting atomicity pass a temporary)."""
    with open(path, "wb") as f:
        return compress_chunked(array, f, **kwargs)
