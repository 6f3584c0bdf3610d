"""Fuzzing srnsz's readers with damaged and crafted streams: every one must decode to what was compressed or fail with
a clear srnsz error; never a silently different result, never another exception, never a runaway.

    python tests/fuzz_streams.py --single 2000 --chunked 300 --crafted 1000 --seed 1

Cases:
- damaged single streams: random byte flips, overwrites, truncations, insertions, deletions, repeated and swapped
  ranges of streams of every kind (interp, lorenzo, lossless, fast profile, psnr with a restoration filter, missing
  values, variable metadata with raw and coded coordinates, 1-D to 4-D, a field coded in parts (format 1.11, with the
  parts made small for the run: srnsz.decomposition.parts));
- damaged chunked streams: the same on chunked files (layouts 1.0 and 1.1), plus swapped chunks and index entries;
- crafted headers: the stream's header (JSON) or a chunked index changed one field at a time (numbers scaled, negated,
  huge, of another type, keys dropped; shapes and spans first of all) and written back with valid checksums, so
  that only the readers' own checks stand between the file and a wrong result.

Each decode runs under a time limit (SIGALRM) and an address-space limit; each outcome is one of ``same`` (decoded,
bit for bit what the intact stream gives), ``error`` (an SrnszError), ``stated`` (decoded into what a crafted file
validly states instead: the same value bytes in another shape of as many values, for a lossless stream whose header
states that shape, whose reconstruction checksum covers the bytes only; or, in a layout 1.0 chunked file, whose chunks
record no place, two chunks swapped together with their entries), ``wrong`` (decoded, different otherwise), ``crash``
(another exception) or ``slow`` (over the time limit). One case in eight also goes through the command line
(``srnsz decompress``), which must exit 0 or 1 and leave no output on error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import smooth_field  # noqa: E402

import srnsz  # noqa: E402
from srnsz.cli import main  # noqa: E402
from srnsz.decomposition.parts import PartLayout  # noqa: E402
from srnsz.errors import SrnszError  # noqa: E402
from srnsz.format.container import read_container, write_container  # noqa: E402
from srnsz.io import chunked  # noqa: E402
from srnsz.io.cf import Coordinate, VariableMeta  # noqa: E402

OUTCOMES = ("same", "error", "stated", "wrong", "crash", "slow")


class Slow(Exception):
    """A case ran past its time limit."""


@dataclass
class Tally:
    """Outcomes per kind of case, and the first examples of the bad ones."""

    counts: dict[str, Counter] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def add(self, kind: str, outcome: str, what: str, seconds: float) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1
        self.slowest = max(self.slowest, seconds)
        if outcome in ("wrong", "crash", "slow") and len(self.bad) < 50:
            self.bad.append(f"{kind}: {outcome}: {what}")

    def failures(self) -> int:
        return sum(c["wrong"] + c["crash"] + c["slow"] for c in self.counts.values())

    def report(self) -> str:
        lines = [f"{'kind':28s} " + " ".join(f"{o:>6s}" for o in OUTCOMES) + "   total"]
        for kind, c in self.counts.items():
            lines.append(f"{kind:28s} " + " ".join(f"{c[o]:6d}" for o in OUTCOMES) + f"   {sum(c.values()):5d}")
        lines.append(f"slowest case {self.slowest:.2f} s")
        lines += self.bad
        return "\n".join(lines)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Slow()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def same(a: Any, b: Any) -> bool:
    """Bit for bit the same arrays (shape, dtype, bytes), or the same metadata."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and a.tobytes() == b.tobytes())
    return repr(a) == repr(b)


def restated(got: Any, expected: Any) -> bool:
    """The intact stream's values, byte for byte, in another shape of as many values (a lossless stream's header
    restating its shape: a valid stream of that array)."""
    if isinstance(got, tuple):
        got, expected = got[0], expected[0]
    return (isinstance(got, np.ndarray) and got.dtype == expected.dtype and got.size == expected.size
            and got.tobytes() == expected.tobytes())


def outcome(decode: Callable[[], Any], expected: Any, limit: float,
            stated: Callable[[Any, Any], bool] | None = None) -> tuple[str, str, float]:
    start = time.perf_counter()
    try:
        with time_limit(limit):
            got = decode()
    except Slow:
        return "slow", "", time.perf_counter() - start
    except SrnszError as exc:
        return "error", str(exc)[:100], time.perf_counter() - start
    except Exception as exc:  # what the fuzzing is for: any other exception is a finding
        return "crash", f"{type(exc).__name__}: {exc}"[:200], time.perf_counter() - start
    if same(got, expected):
        return "same", "", time.perf_counter() - start
    return ("stated" if stated is not None and stated(got, expected) else "wrong"), "", time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- streams to damage
# parts of a field small enough to decode thousands of times
SMALL_PARTS = PartLayout(points=1 << 12, align=8, part_bytes=0)


def single_streams() -> dict[str, bytes]:
    """Streams of every kind the format has, small enough to decode thousands of times."""
    field3d = smooth_field((12, 20, 24), seed=3)
    field3d[1, 2, 3] = np.nan
    with_fills = field3d.copy()
    with_fills[:, :5, :6] = np.float32(1e20)
    lat, lon = np.meshgrid(np.linspace(-60, 60, 64), np.linspace(0, 359, 80), indexing="ij")
    lon = (lon + 30 * np.sin(np.deg2rad(lat))) % 360
    meta = VariableMeta("v", ("y", "x"), {"units": "K", "scale": np.float32(2)},
                        (Coordinate("lat", ("y", "x"), {"units": "degrees_north"}, lat),
                         Coordinate("lon", ("y", "x"), {"units": "degrees_east"}, lon),
                         Coordinate("x", ("x",), {}, np.arange(80.0))), {"title": "t"}, "NETCDF4",
                        unlimited=("y",))
    on_grid = (np.cos(np.deg2rad(lat)) * np.sin(np.deg2rad(lon))).astype(np.float32)
    with_parts = smooth_field((40, 16, 20), seed=6)  # 5 parts of SMALL_PARTS (the other fields are one part)
    with_parts[5, :3, :4] = np.float32(1e20)
    with_parts[30, 2, 2] = np.nan
    return {
        "interp": srnsz.compress(field3d, 1e-3),
        "interp_f64_2d": srnsz.compress(smooth_field((40, 50), np.float64, seed=1), 1e-5),
        "lorenzo": srnsz.compress(field3d, 1e-3, predictor="lorenzo"),
        "lossless": srnsz.compress(field3d, 0),
        "fast": srnsz.compress(field3d, 1e-4, profile="fast"),
        "psnr": srnsz.compress(field3d, 60.0, "psnr"),
        "fills": srnsz.compress(with_fills, 1e-3, fill_value=-999.0),
        "1d": srnsz.compress(smooth_field((3000,), seed=2), 1e-3),
        "4d": srnsz.compress(smooth_field((4, 6, 10, 12), seed=4), 1e-3),
        "metadata_1_10": srnsz.compress(on_grid, 1e-3, metadata=meta),
        "parts_1_11": srnsz.compress(with_parts, 1e-3, fill_value=-999.0, threads=2, parts=SMALL_PARTS),
    }


def chunked_streams() -> dict[str, bytes]:
    field3d = smooth_field((16, 24, 20), seed=5)
    field3d[2, 3, 4] = np.nan
    out = {}
    for name, chunk in (("chunked_8", (8, 8, 8)), ("chunked_rows", (4, 24, 20))):
        buf = io.BytesIO()
        chunked.compress_chunked(field3d, buf, eb=1e-3, mode="rel", chunk=chunk)
        out[name] = buf.getvalue()
    golden = Path(__file__).parent / "golden" / "data" / "golden_chunked_v1_0.srnszc"
    if golden.exists():
        out["chunked_v1_0"] = golden.read_bytes()
    return out


# ----------------------------------------------------------------------------------------------- damage
def damage(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random damage of ``raw`` and its description."""
    data = bytearray(raw)
    n = len(data)
    kind = rng.choice(["flip", "byte", "truncate", "insert", "delete", "repeat", "swap", "zero"])
    i = rng.randrange(n)
    if kind == "flip":
        data[i] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        data[i] = rng.randrange(256)
    elif kind == "truncate":
        del data[i:]
    elif kind == "insert":
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        del data[i:i + rng.randint(1, 16)]
    elif kind == "repeat":
        span = rng.randint(1, 64)
        data[i:i] = data[i:i + span]
    elif kind == "zero":
        span = rng.randint(1, 64)
        data[i:i + span] = bytes(len(data[i:i + span]))
    else:
        j, span = rng.randrange(n), rng.randint(1, 32)
        a, b = sorted((i, j))
        if b - a >= span:
            data[a:a + span], data[b:b + span] = data[b:b + span], data[a:a + span]
    return bytes(data), f"{kind} at {i} of {n}"


def mutate_value(value: Any, rng: random.Random) -> Any:
    """A hostile replacement of one JSON value."""
    choices: list[Any] = [None, True, "x", [], {}, -1, 0, 2**63, 2**64 + 1, 1e308, -1e308, 0.5, float("nan")]
    if isinstance(value, bool):
        choices.append(not value)
    elif isinstance(value, int):
        choices += [value * 1000, value + 1, -value, value // 2, value * 10**9]
    elif isinstance(value, float):
        choices += [value * 1000, -value, value / 1000, 0.0, float("inf")]
    elif isinstance(value, str):
        choices += [value[::-1], value + "x", "", "interp", "lorenzo", "hat", "<f8", "<f4", "|O"]
    elif isinstance(value, list) and value:
        choices += [value[:-1], value + value[-1:], value[::-1], [v * 1000 if isinstance(v, int) else v
                                                                 for v in value]]
    return rng.choice(choices)


def paths(record: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (keys and indices) into a JSON value."""
    yield prefix
    if isinstance(record, dict):
        for key, value in record.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(record, list):
        for index, value in enumerate(record[:8]):
            yield from paths(value, (*prefix, index))


def mutated(record: Any, rng: random.Random, favour: tuple[str, ...]) -> tuple[Any, str]:
    """A deep copy of ``record`` with one value changed or one key dropped (paths under ``favour`` keys first, a
    third of the time)."""
    record = json.loads(json.dumps(record))
    candidates = [p for p in paths(record) if p]
    preferred = [p for p in candidates if p[0] in favour]
    path = rng.choice(preferred if preferred and rng.random() < 0.33 else candidates)
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.15:
        del parent[path[-1]]
        return record, f"dropped {path}"
    parent[path[-1]] = mutate_value(parent[path[-1]], rng)
    return record, f"{path} = {parent[path[-1]]!r}"[:120]


def crafted_single(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    parsed = read_container(raw)
    header, what = mutated(parsed.header, rng, ("shape", "dtype", "predictor", "missing", "region", "parts"))
    try:
        return write_container(header, parsed.sections, parsed.version[1]), f"header {what}"
    except (TypeError, ValueError):  # not JSON-able, e.g. NaN is (a reader could still meet one)
        return raw, f"header {what} (not written)"


def index_of(raw: bytes) -> tuple[dict, int]:
    length = int.from_bytes(raw[-16:-8], "little")
    return json.loads(zstandard.ZstdDecompressor().decompress(raw[-16 - length:-16])), length


def with_index(raw: bytes, meta: dict, chunks: list[bytes] | None = None) -> bytes:
    _, length = index_of(raw)
    body = raw[:-16 - length] if chunks is None else chunked.CHUNKED_MAGIC + b"".join(chunks)
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(json.dumps(meta).encode())
    return body + frame + len(frame).to_bytes(8, "little") + raw[-8:]


SWAPPED_1_0 = " (layout 1.0: no region to check)"


def crafted_chunked(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    meta, _ = index_of(raw)
    spans = meta["chunks"]
    if rng.random() < 0.3 and len(spans) > 1:  # chunks moved: entries only, or entries and bytes together
        a, b = rng.sample(range(len(spans)), 2)
        pieces = [raw[o:o + n] for o, n in spans]
        if rng.random() < 0.5:
            moved = [list(s) for s in spans]
            moved[a], moved[b] = moved[b], moved[a]
            return with_index(raw, {**meta, "chunks": moved}), f"entries {a} and {b} swapped"
        pieces[a], pieces[b] = pieces[b], pieces[a]
        offsets = np.cumsum([len(chunked.CHUNKED_MAGIC)] + [len(p) for p in pieces])[:-1].tolist()
        return (with_index(raw, {**meta, "chunks": [[o, len(p)] for o, p in zip(offsets, pieces)]}, pieces),
                f"chunks {a} and {b} swapped with their entries"
                f"{SWAPPED_1_0 if list(meta.get('version', [1, 0])) < [1, 1] else ''}")
    index, what = mutated(meta, rng, ("shape", "chunk", "chunks", "dtype", "version"))
    try:
        return with_index(raw, index), f"index {what}"
    except (TypeError, ValueError):
        return raw, f"index {what} (not written)"


def swapped_chunks(raw: bytes, expected: np.ndarray) -> Callable[[Any, Any], bool]:
    """Whether a decoded array is ``expected`` with two same-shaped chunks of ``raw``'s grid exchanged (what a layout
    1.0 file with two chunks swapped together with their entries validly states)."""
    index = chunked.read_index(io.BytesIO(raw))

    def check(got: Any, _: Any) -> bool:
        if not isinstance(got, np.ndarray) or got.shape != expected.shape:
            return False
        differ = [k for k in index.regions if not np.array_equal(got[k], expected[k], equal_nan=True)]
        return len(differ) == 2 and np.array_equal(got[differ[0]], expected[differ[1]], equal_nan=True)
    return check


# ----------------------------------------------------------------------------------------------- decoding
def decode_single(raw: bytes) -> tuple[np.ndarray, Any]:
    return srnsz.decompress(raw), srnsz.api.variable_metadata(raw)


def decode_chunked(raw: bytes) -> np.ndarray:
    index = chunked.read_index(io.BytesIO(raw))
    return chunked.decompress_chunked(io.BytesIO(raw), threads=2 if len(index.spans) > 2 else 1)


def through_cli(raw: bytes, work: Path, suffix: str) -> str | None:
    """None when ``srnsz decompress`` (and info) exit 0 or 1 and leave nothing on error; else what went wrong."""
    for p in work.iterdir():
        p.unlink()
    src, out = work / f"in{suffix}", work / "out.npy"
    src.write_bytes(raw)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            codes = (main(["decompress", str(src), "-o", str(out)]), main(["info", str(src)]))
    except Exception as exc:  # a traceback from the command line
        return f"{type(exc).__name__}: {exc}"[:200]
    if any(c not in (0, 1) for c in codes):
        return f"exit codes {codes}"
    left = sorted(p.name for p in work.iterdir())
    if codes[0] == 1 and left != [src.name]:
        return f"left {left} after an error"
    return None


def run(single: int, chunked_cases: int, crafted: int, seed: int, limit: float, cli_every: int = 8) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    singles, chunks = single_streams(), chunked_streams()
    expected_single = {name: decode_single(raw) for name, raw in singles.items()}
    expected_chunked = {name: decode_chunked(raw) for name, raw in chunks.items()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = ([("damaged single", damage, singles, expected_single, decode_single)] * single
                + [("damaged chunked", damage, chunks, expected_chunked, decode_chunked)] * chunked_cases
                + [("crafted single header", crafted_single, singles, expected_single, decode_single)] * crafted
                + [("crafted chunked index", crafted_chunked, chunks, expected_chunked, decode_chunked)]
                * (crafted // 2))
        for number, (kind, make, corpus, expected, decode) in enumerate(plan):
            name = rng.choice(sorted(corpus))
            bad, what = make(corpus[name], rng)
            if kind == "crafted single header" and singles.get(name) is not None and "lossless" in name:
                stated = restated
            elif what.endswith(SWAPPED_1_0):
                stated = swapped_chunks(corpus[name], expected[name])
            else:
                stated = None
            result, detail, seconds = outcome(lambda bad=bad, decode=decode: decode(bad), expected[name], limit,
                                              stated)
            tally.add(kind, result, f"{name} {what} {detail}", seconds)
            if number % cli_every == 0:
                problem = through_cli(bad, work, ".srnszc" if "chunked" in kind else ".srnsz")
                if problem:
                    tally.add("command line", "crash", f"{name} {what}: {problem}", 0.0)
                else:
                    tally.add("command line", "same", "", 0.0)
    return tally


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=2000, help="damaged single streams")
    parser.add_argument("--chunked", type=int, default=300, help="damaged chunked streams")
    parser.add_argument("--crafted", type=int, default=1000, help="crafted headers (and half as many chunked indexes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=10.0, help="seconds per decode")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit of this process")
    args = parser.parse_args()
    limit = int(args.memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()
    tally = run(args.single, args.chunked, args.crafted, args.seed, args.limit)
    print(tally.report())
    print(f"{time.perf_counter() - start:.0f} s; wrong + crash + slow = {tally.failures()}")
    return 1 if tally.failures() else 0


if __name__ == "__main__":
    sys.exit(main_cli())
