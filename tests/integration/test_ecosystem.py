"""HDF5/NetCDF write-back, the numcodecs/Zarr codec, chunked streams, Dask-distributed compression."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bound, measured_cli_runs, smooth_field

import srnsz
from srnsz.bounds import ErrorBound
from srnsz.cli import main
from srnsz.decomposition.tiling import chunk_keys
from srnsz.errors import StreamFormatError
from srnsz.io import chunked


@pytest.fixture
def field() -> np.ndarray:
    data = smooth_field((21, 40, 33))
    data[3, 4, 5] = np.nan
    return data


def test_numcodecs_codec_is_registered_and_keeps_the_bound(field):
    import numcodecs

    codec = numcodecs.get_codec({"id": "srnsz", "eb": 0.01, "kind": "linear"})
    assert codec.get_config() == {"id": "srnsz", "eb": 0.01, "mode": "abs", "predictor": "interp", "kind": "linear"}
    back = codec.decode(codec.encode(field))
    assert_bound(field, back, 0.01)
    out = np.empty_like(field)
    codec.decode(codec.encode(field), out=out)
    assert np.array_equal(out, back, equal_nan=True)


def test_xarray_to_zarr_keeps_the_bound_on_every_chunk(field, tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    from srnsz.io.codec import SrnszZarr3

    eb = 1e-3 * float(np.nanmax(field) - np.nanmin(field))
    ds = xr.Dataset({"t": (("z", "y", "x"), field)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(tmp_path / "s.zarr", zarr_format=3,
                   encoding={"t": {"serializer": SrnszZarr3(eb=eb), "compressors": None, "chunks": (8, 16, 16)}})
    back = xr.open_zarr(tmp_path / "s.zarr")["t"].values
    for key in chunk_keys(field.shape, (8, 16, 16)):
        assert_bound(field[key], back[key], eb)
    assert np.isnan(back[3, 4, 5])


def test_chunked_stream_round_trip_and_one_chunk_alone(field):
    buf = io.BytesIO()
    index = chunked.compress_chunked(field, buf, eb=1e-3, mode="rel", chunk=(8, 16, 16))
    eb = index.error_bound["abs"]
    assert eb == pytest.approx(1e-3 * (np.nanmax(field) - np.nanmin(field)))  # whole-array range, not per chunk
    assert_bound(field, chunked.decompress_chunked(buf), eb)
    keys = index.regions
    assert len(keys) == 3 * 3 * 3
    last = chunked.read_chunk(buf, chunked.read_index(buf), len(keys) - 1)
    assert_bound(field[keys[-1]], last, eb)


@pytest.mark.slow
def test_chunked_streams_are_the_same_bytes_for_every_thread_count(field, tmp_path):
    streams = []
    for threads in (1, 2, 3):
        buf = io.BytesIO()
        chunked.compress_chunked(field, buf, eb=1e-3, mode="rel", chunk=(8, 16, 16), threads=threads)
        streams.append(buf.getvalue())
    assert streams[0] == streams[1] == streams[2]
    decoded = [chunked.decompress_chunked(io.BytesIO(streams[0]), threads=t) for t in (1, 2)]
    assert np.array_equal(decoded[0].view(np.uint32), decoded[1].view(np.uint32))
    done = []  # the workers write their chunks into the array; the progress still counts every point once
    chunked.decompress_chunked(io.BytesIO(streams[0]), threads=2, progress=done.append)
    assert sum(done) == field.size and len(done) == len(list(chunked.chunk_keys(field.shape, (8, 16, 16))))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(srnsz.SrnszError, match="threads"):
            chunked.compress_chunked(field, io.BytesIO(), eb=1e-3, chunk=(8, 16, 16), threads=bad)
    # the CLI: --threads with --chunk, both directions
    np.save(tmp_path / "f.npy", field)
    for threads in ("1", "2"):
        main(["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / f"f{threads}.srnsz"), "--chunk", "8", "16",
              "16", "--threads", threads])
        main(["decompress", str(tmp_path / f"f{threads}.srnsz"), "-o", str(tmp_path / f"b{threads}.npy"),
              "--threads", threads])
    assert (tmp_path / "f1.srnsz").read_bytes() == (tmp_path / "f2.srnsz").read_bytes() == streams[0]
    # the fast profile: the same bytes for every thread count too
    fast = [io.BytesIO() for _ in range(2)]
    for threads, buf in zip((1, 2), fast):
        chunked.compress_chunked(field, buf, eb=1e-3, mode="rel", chunk=(8, 16, 16), threads=threads, profile="fast")
    assert fast[0].getvalue() == fast[1].getvalue() != streams[0]
    # a network predictor whose float32 streams record their inference threads: chunks side by side leave them as
    # one at a time does (interp's own coding threads are not in any header)
    pytest.importorskip("torch")
    ae = [io.BytesIO() for _ in range(2)]
    for threads, buf in zip((1, 2), ae):
        chunked.compress_chunked(field[:8, :32, :32], buf, eb=1e-2, mode="rel", chunk=(8, 16, 32), threads=threads,
                                 predictor="ae", arithmetic="float32", compete_interp=False)
    assert ae[0].getvalue() == ae[1].getvalue()
    eb = ErrorBound("rel", 1e-3).resolve(field)
    assert_bound(field, chunked.decompress_chunked(io.BytesIO(fast[0].getvalue())), eb)
    assert np.array_equal(np.load(tmp_path / "b2.npy").view(np.uint32), decoded[0].view(np.uint32))


# Runs one CLI command in a child and prints its peak working memory: VmHWM minus VmRSS just before the command
# (VmHWM reset to VmRSS there through /proc/self/clear_refs).
MEMORY_CHILD = """
import gc, sys

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

import tqdm  # imported lazily by the CLI: interpreter and imports are not the work
from srnsz.cli import main

gc.collect()
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass  # the peak then includes the import peak: stricter
before = status("VmRSS")
assert main(sys.argv[1:]) == 0
print("WORK", status("VmHWM") - before)
"""


def _cli_working_memory(*argv: str) -> int:
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, *argv], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.splitlines()[-1].split()[1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_cli_chunked_memory_stays_below_a_quarter_of_the_field(tmp_path):
    shape = (128, 512, 512)  # 128 MiB of float32 in 64^3 chunks: a chunk's working set is ~15-23 MiB
    src, stream, back = tmp_path / "big.npy", tmp_path / "big.sz", tmp_path / "back.npy"
    out = np.lib.format.open_memmap(src, "w+", np.float32, shape)
    y, x = np.meshgrid(np.linspace(0, 6, shape[1]), np.linspace(0, 6, shape[2]), indexing="ij")
    for k in range(shape[0]):
        out[k] = np.sin(x + 0.01 * k) * np.cos(y) + 0.1 * np.sin(5 * x * y)
    out[3, 4, 5] = np.nan
    out.flush()
    del out
    quarter = src.stat().st_size / 4
    # --tune off and a 1e-2 bound for speed (tuning is most of the time; its memory is small and per chunk).
    work = _cli_working_memory("compress", str(src), "-o", str(stream), "--eb", "1e-2", "--tune", "off",
                               "--chunk", "64", "64", "64", "--threads", "1")
    assert work < quarter, f"compress peak working memory {work / 2**20:.1f} MiB"
    work = _cli_working_memory("decompress", str(stream), "-o", str(back), "--threads", "1")
    assert work < quarter, f"decompress peak working memory {work / 2**20:.1f} MiB"
    # each decoding thread holds a chunk or two of its own
    work = _cli_working_memory("decompress", str(stream), "-o", str(back), "--threads", "2", "--force")
    assert work < 2 * quarter, f"decompress peak working memory with 2 threads {work / 2**20:.1f} MiB"
    with open(stream, "rb") as f:
        eb = chunked.read_index(f).error_bound["abs"]
    original, recon = np.load(src, mmap_mode="r"), np.load(back, mmap_mode="r")
    for k in range(0, shape[0], 16):
        assert_bound(original[k:k + 16], recon[k:k + 16], eb)


def test_damaged_chunked_streams_are_refused(field):
    buf = io.BytesIO()
    chunked.compress_chunked(field, buf, eb=0.01, chunk=(8, 16, 16))
    raw = buf.getvalue()
    for damaged in (raw[:-3], raw[:-20] + bytes(20), b"x" + raw[1:]):
        with pytest.raises(StreamFormatError):
            chunked.decompress_chunked(io.BytesIO(damaged))
    index = chunked.read_index(io.BytesIO(raw))
    offset, length = index.spans[1]
    middle = raw[:offset + length // 2] + bytes([raw[offset + length // 2] ^ 0xFF]) + raw[offset + length // 2 + 1:]
    for threads in (1, 2):  # a damaged chunk is refused by the thread that decodes it
        with pytest.raises(StreamFormatError):
            chunked.decompress_chunked(io.BytesIO(middle), threads=threads)


def test_cli_chunked_and_write_back_to_hdf5_and_netcdf(field, tmp_path):
    h5py = pytest.importorskip("h5py")
    netcdf = pytest.importorskip("scipy.io").netcdf_file
    src = tmp_path / "in.h5"
    with h5py.File(src, "w") as f:
        f["temp"] = field
    assert main(["compress", str(src), "-o", str(tmp_path / "a.sz"), "--var", "temp", "--chunk", "8", "16", "16",
                 "--eb", "1e-2", "--mode", "abs"]) == 0
    assert main(["compress", str(src), "-o", str(tmp_path / "a.sz"), "--var", "temp", "--chunk", "8"]) == 1  # exists
    for name in ("b.h5", "b.nc", "b.npy"):
        assert main(["decompress", str(tmp_path / "a.sz"), "-o", str(tmp_path / name), "--var", "temp"]) == 0
    with h5py.File(tmp_path / "b.h5") as f:
        assert_bound(field, f["temp"][()], 1e-2)
    with netcdf(tmp_path / "b.nc", mmap=False) as nc:
        assert_bound(field, np.array(nc.variables["temp"].data).astype(field.dtype), 1e-2)  # NetCDF is big endian
    assert_bound(field, np.load(tmp_path / "b.npy"), 1e-2)
    assert main(["info", str(tmp_path / "a.sz")]) == 0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_bad_chunk_shape_is_a_clear_error(field, tmp_path):
    np.save(tmp_path / "f.npy", field)
    assert main(["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / "f.sz"), "--chunk", "8", "8"]) == 1
    assert not (tmp_path / "f.sz").exists()


def test_dask_two_workers_write_the_same_bytes_as_serial(tmp_path):
    zarr = pytest.importorskip("zarr")
    distributed = pytest.importorskip("dask.distributed")
    from srnsz.io.distributed import compress_zarr

    data = smooth_field((32, 48, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.create_array(str(tmp_path / "src.zarr"), data=data, chunks=(16, 16, 16))
        eb = 1e-3
        compress_zarr(str(tmp_path / "src.zarr"), str(tmp_path / "serial.zarr"), eb)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            compress_zarr(str(tmp_path / "src.zarr"), str(tmp_path / "dask.zarr"), eb, client=client)
        serial = zarr.open_array(str(tmp_path / "serial.zarr"))[:]
        parallel = zarr.open_array(str(tmp_path / "dask.zarr"))[:]
    assert_bound(data, serial, eb)
    assert np.array_equal(serial, parallel)
    chunk_files = sorted((tmp_path / "serial.zarr" / "c").rglob("*"))
    assert len([p for p in chunk_files if p.is_file()]) == 2 * 3 * 3
    for p in chunk_files:
        if p.is_file():
            twin = tmp_path / "dask.zarr" / p.relative_to(tmp_path / "serial.zarr")
            assert p.read_bytes() == twin.read_bytes()
    assert srnsz.info((tmp_path / "serial.zarr" / "c" / "0" / "0" / "0").read_bytes()).shape == (16, 16, 16)


def test_chunked_layout_version_is_recorded_and_checked(field):
    import json

    import zstandard

    buf = io.BytesIO()
    chunked.compress_chunked(field, buf, eb=0.01, chunk=(8, 16, 16))
    raw = buf.getvalue()
    length = int.from_bytes(raw[-16:-8], "little")
    meta = json.loads(zstandard.ZstdDecompressor().decompress(raw[-16 - length:-16]))
    assert meta["version"] == list(chunked.CHUNKED_VERSION)

    def with_index(changed: dict) -> bytes:
        body = zstandard.ZstdCompressor().compress(json.dumps(changed).encode())
        return raw[:-16 - length] + body + len(body).to_bytes(8, "little") + raw[-8:]

    older = {k: v for k, v in meta.items() if k != "version"}  # files written before the version was recorded
    assert np.array_equal(chunked.decompress_chunked(io.BytesIO(with_index(older))),
                          chunked.decompress_chunked(io.BytesIO(raw)), equal_nan=True)
    for bad in ({**meta, "version": [2, 0]}, {**meta, "version": [1, 9]}, {**meta, "dtype": "|O"}):
        with pytest.raises(StreamFormatError):
            chunked.read_index(io.BytesIO(with_index(bad)))


def _index_of(raw: bytes) -> tuple[dict, int]:
    """(the index record, its frame's length) of a chunked stream."""
    import json

    import zstandard

    length = int.from_bytes(raw[-16:-8], "little")
    return json.loads(zstandard.ZstdDecompressor().decompress(raw[-16 - length:-16])), length


def _rebuilt(raw: bytes, meta: dict, chunks: list[bytes] | None = None, checksum: bool = True) -> bytes:
    """``raw`` with index ``meta`` (its frame written with or without the checksum) and, when given, ``chunks`` as
    its chunks' bytes in place of its own."""
    import json

    import zstandard

    index, length = _index_of(raw)
    body = raw[:-16 - length] if chunks is None else chunked.CHUNKED_MAGIC + b"".join(chunks)
    frame = zstandard.ZstdCompressor(write_checksum=checksum).compress(json.dumps(meta).encode())
    return body + frame + len(frame).to_bytes(8, "little") + raw[-8:]


@pytest.fixture
def equal_chunks() -> bytes:
    """A chunked stream of 8 chunks of the same shape (a chunk read in another's place fits it)."""
    buf = io.BytesIO()
    chunked.compress_chunked(smooth_field((16, 16, 32), seed=3), buf, eb=1e-3, chunk=(8, 8, 16))
    return buf.getvalue()


def test_swapped_chunk_entries_are_refused(equal_chunks):
    raw = equal_chunks
    meta, _ = _index_of(raw)
    spans = meta["chunks"]
    pieces = [raw[o:o + n] for o, n in spans]
    for a, b in ((0, 1), (2, 5), (6, 7)):
        swapped = [list(s) for s in spans]
        swapped[a], swapped[b] = swapped[b], swapped[a]
        with pytest.raises(StreamFormatError, match="chunk index"):  # the entries swapped, a valid checksum
            chunked.decompress_chunked(io.BytesIO(_rebuilt(raw, {**meta, "chunks": swapped})))
        # the chunks' bytes swapped too, so the entries still follow each other: each chunk's region refuses it
        moved = list(pieces)
        moved[a], moved[b] = moved[b], moved[a]
        offsets = np.cumsum([len(chunked.CHUNKED_MAGIC)] + [len(m) for m in moved])[:-1].tolist()
        crafted = _rebuilt(raw, {**meta, "chunks": [[o, len(m)] for o, m in zip(offsets, moved)]}, moved)
        for call in (chunked.read_index, chunked.decompress_chunked):
            with pytest.raises(StreamFormatError, match=f"chunk {a} does not match"):
                call(io.BytesIO(crafted))
    # an index changed without its checksum
    _, length = _index_of(raw)
    frame = bytearray(raw[-16 - length:-16])
    frame[len(frame) // 2] ^= 0x01
    with pytest.raises(StreamFormatError):
        chunked.read_index(io.BytesIO(raw[:-16 - length] + bytes(frame) + raw[-16:]))
    with pytest.raises(StreamFormatError, match="checksum"):
        chunked.read_index(io.BytesIO(_rebuilt(raw, meta, checksum=False)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_huge_chunked_index_is_refused_at_once(equal_chunks, tmp_path):
    raw = equal_chunks
    meta, _ = _index_of(raw)
    crafted = {"rows": {**meta, "shape": [10**9, *meta["shape"][1:]]},  # the chunk count no longer fits
               "chunk": {**meta, "shape": [10**9, *meta["shape"][1:]], "chunk": [10**9, *meta["chunk"][1:]]},
               "both": {**meta, "shape": [10**9] * 3, "chunk": [10**9 // 2 + 1] * 3}}
    commands = []
    for name, index in crafted.items():
        (tmp_path / f"{name}.sz").write_bytes(_rebuilt(raw, index))
        commands += [["decompress", str(tmp_path / f"{name}.sz"), "-o", str(tmp_path / f"{name}.npy")],
                     ["info", str(tmp_path / f"{name}.sz")]]
    for argv, (code, seconds, work) in zip(commands, measured_cli_runs(commands)):
        assert code == 1 and seconds < 1 and work < 100 << 20, (argv, code, seconds, work)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.sz" for n in crafted)


def test_compress_zarr_on_a_dataset_store_names_its_arrays(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    from srnsz.errors import InvalidInputError
    from srnsz.io.distributed import compress_zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.Dataset({"t": (("y", "x"), smooth_field((20, 30))), "u": (("y", "x"), smooth_field((20, 30), seed=1))}
                   ).to_zarr(tmp_path / "ds.zarr", zarr_format=3, consolidated=False)
        with pytest.raises(InvalidInputError, match="holding arrays t, u; give one array's path"):
            compress_zarr(str(tmp_path / "ds.zarr"), str(tmp_path / "out.zarr"), 0.01)
        with pytest.raises(InvalidInputError, match="does not exist"):
            compress_zarr(str(tmp_path / "none.zarr"), str(tmp_path / "out.zarr"), 0.01)
        assert compress_zarr(str(tmp_path / "ds.zarr" / "t"), str(tmp_path / "out.zarr"), 0.01) == 20 * 30 * 4
        with pytest.raises(InvalidInputError, match="already holds"):
            compress_zarr(str(tmp_path / "ds.zarr" / "t"), str(tmp_path / "out.zarr"), 0.01)
