"""Contracts of the coding stage: entropy coder round trips, every coding method, the context mixing, the static
coder, the context details."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from legacy_adaptive import encode_adaptive

from srnsz.coding.batch import METHOD_ADAPTIVE, CodeBatch
from srnsz.coding.context_mixing import BINARISATION_2, BINARISATIONS, MixingDecoder, MixingEncoder, encode_mixing
from srnsz.coding.entropy import (
    METHODS,
    WRITTEN_BINARISATION,
    CodeReader,
    ContextCodeWriter,
    format_minor,
    open_substream,
)
from srnsz.coding.static import encode_static
from srnsz.errors import StreamFormatError
from srnsz.quantizer import ESCAPE


@pytest.mark.parametrize("scale", [0.01, 3, 3000])
def test_entropy_coder_round_trip(scale):
    rng = np.random.default_rng(1)
    writer = ContextCodeWriter()
    batches = []
    for table in (0, 1, 1, 2):
        codes = np.rint(rng.laplace(0, scale, 5000)).clip(-30000, 30000).astype(np.int16)
        codes[::97] = ESCAPE
        contexts = rng.integers(0, 9, 5000).astype(np.uint8)
        writer.write(codes, contexts, table)
        batches.append((codes, contexts, table))
    reader = CodeReader(writer.finish())
    for codes, contexts, table in batches:
        assert np.array_equal(reader.read(contexts, table), codes)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_coding_method_round_trips_extreme_codes_and_details(method):
    record = METHODS[method]
    encode = record.writer or {METHOD_ADAPTIVE: encode_adaptive}[method]  # read-only methods: the legacy writer
    rng = np.random.default_rng(3)
    batches = []
    for n, shape in ((0, ()), (1, (1, 1)), (7, ()), (3000, (30, 100)), (20000, (5, 40, 100)), (4096, (2, 2, 1024))):
        codes = np.rint(rng.laplace(0, 4, n)).astype(np.int16)
        codes[::13] = rng.choice([ESCAPE, 32767, -32767, 255, -256, 16, -17, 100], codes[::13].size)
        contexts = rng.integers(0, 16, n).astype(np.uint8)
        detail = rng.integers(0, 16, n).astype(np.uint8)
        batches.append(CodeBatch(codes, contexts, 4, detail, shape))
    if record.name.startswith("row differences"):  # their differences must stay in the code range
        batches = [CodeBatch(np.cumsum(np.clip(b.codes, -50, 50), dtype=np.int16) if b.codes.size else b.codes,
                             b.contexts, 4, b.detail, b.shape) for b in batches]
    body = encode(batches)
    assert body is not None and body[0] == method
    capacity = record.capacity(body[1:])
    assert capacity is None or capacity >= sum(b.codes.size for b in batches)
    assert format_minor(struct.pack("<III", 1, 4, len(body)) + body) == (record.format_minor
                                                                          if record.format_minor > 2 else None)
    reader = open_substream(body)
    for b in batches:
        empty = np.empty(0, np.int16)
        assert np.array_equal(reader.read(CodeBatch(empty, b.contexts, 4, b.detail, b.shape)), b.codes)


def test_context_mixing_uses_details_and_is_chosen():
    # Codes that follow the detail, one context: the writer must see it (about 4 bits per code without it).
    rng = np.random.default_rng(4)
    detail = rng.integers(0, 16, 200000).astype(np.uint8)
    codes = (detail.astype(np.int16) - 8) * 5
    writer = ContextCodeWriter()
    writer.write(codes, np.zeros(codes.size, np.uint8), 0, detail)
    blob = writer.finish()
    assert blob[12] == WRITTEN_BINARISATION.method  # after the table count, table id and size
    assert len(blob) < 0.02 * codes.size
    assert writer.estimated_bytes() < 0.02 * codes.size
    assert np.array_equal(CodeReader(blob).read(np.zeros(codes.size, np.uint8), 0, detail), codes)


def test_context_mixing_sees_the_neighbours_in_the_batch():
    # Every row repeats the one above and rows are random: only a coder that knows the layout sees the repeat.
    rng = np.random.default_rng(5)
    rows = np.repeat(rng.integers(-12, 13, (40, 1, 500)), 10, axis=1).astype(np.int16)  # (40, 10, 500)
    codes, zeros = rows.ravel(), np.zeros(rows.size, np.uint8)
    knowing = len(encode_mixing([CodeBatch(codes, zeros, 0, None, rows.shape)]))
    blind = len(encode_mixing([CodeBatch(codes, zeros, 0, None, ())]))
    static = len(encode_static([CodeBatch(codes, zeros, 0)]))
    assert static > 0.9 * rows.size * np.log2(25) / 8  # uniform codes: ~4.6 bits each without neighbours
    assert blind > 0.9 * static
    assert knowing < 0.2 * static  # 9 of 10 rows are free: ~0.46 bits per code plus learning


def test_context_mixing_tables_are_the_format_s():
    # Built from floating-point log/exp at import, which checks them against the format's digest.
    from srnsz.coding import context_mixing as cm

    assert cm.tables_digest() == cm.TABLES_SHA256
    assert cm.STRETCH[2048] == 0 and cm.SQUASH[2047] == 2048 and cm.RATE[0] == 43690


@pytest.mark.parametrize("binarisation", BINARISATIONS.values(), ids=lambda b: f"binarisation{b.ident}")
def test_context_mixing_decoder_survives_garbage(binarisation):
    # Damaged payloads decode to some codes without reading out of bounds (the container's CRC and the
    # reconstruction checksum reject them later).
    rng = np.random.default_rng(6)
    for size in (0, 1, 5, 1000, 100000):
        decoder = MixingDecoder(rng.integers(0, 256, size).astype(np.uint8).tobytes(), binarisation)
        try:
            codes = decoder.decode(rng.integers(0, 16, 5000).astype(np.uint8), None, (50, 100))
        except StreamFormatError:
            continue  # a code beyond the quantizer's radius: refused
        assert codes.dtype == np.int16 and codes.size == 5000


@pytest.mark.parametrize("shape", [(0,), (4, 0), (-1, 12), (2, -6), (5,), (2, 2, 2), (2**62, 4)])
def test_context_mixing_refuses_layouts_that_do_not_fit_the_batch(shape):
    # The compiled loop indexes neighbours by the layout: a wrong one must never reach it.
    codes, contexts = np.zeros(12, np.int16), np.zeros(12, np.uint8)
    with pytest.raises(ValueError, match="layout"):
        MixingEncoder(BINARISATION_2).encode(codes, contexts, None, shape)
    with pytest.raises(ValueError, match="layout"):
        MixingDecoder(b"\0" * 8, BINARISATION_2).decode(contexts, None, shape)


@pytest.mark.parametrize("seed", range(4))
def test_static_size_lower_bound_is_below_every_static_payload(seed):
    # The writer skips the static coder where this bound exceeds the mixing bytes: it must never exceed the real size.
    from srnsz.coding.static import size_lower_bound

    rng = np.random.default_rng(seed)
    batches = []
    for n in (1, 50, 3000, 40000):
        codes = np.rint(rng.laplace(0, [0.3, 2, 40, 900][seed], n)).clip(-32767, 32767).astype(np.int16)
        codes[:: 17] = 0
        batches.append(CodeBatch(codes, rng.integers(0, 16 if seed % 2 else 2, n).astype(np.uint8), 0))
        assert size_lower_bound(batches) <= 8 * len(encode_static(batches))
    assert size_lower_bound([CodeBatch(np.zeros(100, np.int16), np.zeros(100, np.uint8), 0)]) == 0.0


def test_context_coding_beats_order0_on_quiet_regions():
    # Zero codes with zero contexts, busy codes with busy contexts: context coding must exploit it.
    rng = np.random.default_rng(2)
    quiet = np.zeros(100000, np.int16)
    busy = rng.integers(-20, 21, 100000).astype(np.int16)
    writer = ContextCodeWriter()
    writer.write(np.concatenate([quiet, busy]), np.repeat(np.array([0, 8], np.uint8), 100000), 0)
    size = len(writer.finish())
    p0, p = 0.5 + 0.5 / 41, 0.5 / 41
    order0_bits = 200000 * -(p0 * np.log2(p0) + 40 * p * np.log2(p))  # about 3.6 bits per code
    context_bits = 100000 * np.log2(41)  # quiet half free, busy half uniform: about 2.7 bits per code
    assert size * 8 < 1.01 * context_bits < 0.8 * order0_bits


def numpy_curvature_details(cubic: list[np.ndarray], linear: list[np.ndarray], bin_width: float) -> np.ndarray:
    """The details as numpy computed them before the C kernel (the reference the streams were written with)."""
    with np.errstate(invalid="ignore", over="ignore"):
        gaps = [c - lin for c, lin in zip(cubic, linear)]
        for gap in gaps:
            gap[~np.isfinite(gap)] = np.nan
        gap = sum(gaps) / (len(gaps) * bin_width)
        bucket = np.clip(np.frexp(np.minimum(np.abs(gap), 8.0) * 8.0)[1], 0, 6)
        detail = np.where(gap > 0, 8 + bucket, 8 - bucket)
    detail[np.isnan(gap)] = 15
    return detail.astype(np.uint8)


@pytest.mark.parametrize("n_views", [1, 2, 3])
def test_curvature_details_match_numpy(n_views):
    from srnsz.coding.context import curvature_details

    rng = np.random.default_rng(n_views)
    shape = (7, 301)
    # gaps around every bucket edge (2^-3..2^2 bins and their float neighbours), zeros of both signs, huge values
    # (overflowing sums), NaN and infinities
    edges = np.array([0.0, -0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1e300, np.inf, -np.inf, np.nan])
    specials = np.concatenate([edges, -edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    cubic, linear = [], []
    for _ in range(n_views):
        c = rng.normal(0, 3, shape) * 10.0 ** rng.integers(-3, 3, shape)
        c.flat[rng.choice(c.size, specials.size, replace=False)] = specials
        lin = np.where(rng.random(shape) < 0.7, 0.0, rng.normal(0, 1, shape))
        lin.flat[rng.choice(lin.size, 5, replace=False)] = [np.nan, np.inf, -np.inf, 1e300, -1e300]
        cubic.append(c)
        linear.append(lin)
    for bin_width in (0.5, 1.0, 3e-7):
        got = curvature_details(lambda i, kind: (cubic if kind == "cubic" else linear)[i], n_views, bin_width)
        assert np.array_equal(got, numpy_curvature_details(cubic, linear, bin_width))
