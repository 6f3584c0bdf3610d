"""Side-by-side benchmark: every codec on every field at the same absolute bounds.

For each field and bound: ratio, bit rate, PSNR, SSIM, max error / eb, whether the bound held, and compress /
decompress throughput (best of `repeat`). Relative bounds are fractions of the value range of the valid values
(finite, not fill values: srnsz.missing), and every codec gets the same absolute bound.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from srnsz.api import as_field
from srnsz.bounds import finite_range
from srnsz.eval.peers import BenchCodec, get_codec, list_codecs
from srnsz.metrics import bit_rate, bound_held, max_finite_error, quality
from srnsz.missing import MissingRule, find_missing


@dataclass(frozen=True)
class BenchRow:
    """One codec on one field at one bound."""

    field: str
    shape: str
    codec: str
    eb_rel: float
    eb_abs: float
    ratio: float
    bit_rate: float
    psnr_db: float
    ssim: float
    max_err_over_eb: float
    bound_held: bool
    compress_mb_s: float
    decompress_mb_s: float
    error: str = ""  # set when the codec failed on this input (reported, never hidden)


def valid_mask(data: np.ndarray, rule: MissingRule) -> np.ndarray:
    """The valid points (not missing under ``rule``, undeclared fills detected): the ones bounds and metrics are
    about, for every codec alike."""
    mask = find_missing(data, rule).mask
    return np.ones(data.shape, bool) if mask is None else ~mask


def _run_codec(codec: BenchCodec, data: np.ndarray, eb: float, repeat: int) -> tuple[float, float, int, np.ndarray]:
    """(compress s, decompress s, compressed bytes, reconstruction), best of `repeat` timings."""
    t_c, packed = _best_time(lambda: codec.compress(data, eb), repeat)
    t_d, recon = _best_time(lambda: codec.decompress(packed, data), repeat)
    return t_c, t_d, packed.nbytes, np.asarray(recon).reshape(data.shape)


def _run_isolated(codec: BenchCodec, data: np.ndarray, eb: float, repeat: int) -> tuple[float, float, int, np.ndarray]:
    """_run_codec in a forked child, so a crash in native code becomes an error instead of killing the bench."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        try:
            sender.send(("ok", _run_codec(codec, data, eb, repeat)))
        except Exception as exc:
            sender.send(("error", f"{type(exc).__name__}: {exc}"))

    process = context.Process(target=child, daemon=True)
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"{codec.name} crashed (exit code {process.exitcode})") from None
    process.join()
    if status != "ok":
        raise RuntimeError(payload)
    return payload


def _best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_field(name: str, data: np.ndarray, bounds: list[float], codecs: list[str | BenchCodec], mode: str = "rel",
                repeat: int = 1, rule: MissingRule | None = None,
                keep: Callable[[str, float, np.ndarray], None] | None = None) -> list[BenchRow]:
    """Rows for `data` under each bound (rel: fraction of the valid range; abs: data units) and codec (a
    registered name, or a BenchCodec of the caller's).

    `keep(codec, bound, recon)` receives each reconstruction (for error maps)."""
    data = as_field(data)
    valid = valid_mask(data, rule or MissingRule())
    value_range = finite_range(data, ~valid)
    rows = []
    megabytes = data.nbytes / 1e6
    for bound in bounds:
        eb = bound * value_range if mode == "rel" else bound
        for chosen in codecs:
            codec = get_codec(chosen) if isinstance(chosen, str) else chosen
            codec_name = codec.name
            try:
                run = _run_isolated if codec.isolated else _run_codec
                t_c, t_d, nbytes, recon = run(codec, data, eb, repeat)
            except Exception as exc:  # a peer's failure is a result to report, not a reason to stop the run
                nan = float("nan")
                rows.append(BenchRow(name, "x".join(map(str, data.shape)), codec_name, bound, eb, nan, nan, nan, nan,
                                     nan, False, nan, nan, f"{type(exc).__name__}: {exc}"[:200]))
                continue
            q = quality(data, recon, valid)
            max_err = max_finite_error(data, recon)  # over every finite value, fill values included
            held = bound_held(data, recon, eb)
            rows.append(BenchRow(
                field=name, shape="x".join(map(str, data.shape)), codec=codec_name,
                eb_rel=bound / value_range if mode == "abs" and value_range else bound, eb_abs=eb,
                ratio=data.nbytes / nbytes, bit_rate=bit_rate(nbytes, data.size), psnr_db=q.psnr_db,
                ssim=q.ssim, max_err_over_eb=max_err / eb if eb > 0 else (0.0 if max_err == 0 else float("inf")),
                bound_held=held, compress_mb_s=megabytes / t_c, decompress_mb_s=megabytes / t_d,
            ))
            if keep is not None:
                keep(codec_name, bound, recon)
    return rows


def available_codecs(requested: list[str] | None) -> tuple[list[str], list[str]]:
    """(codecs that can run, messages about the ones skipped); `requested` None or ['all'] means every one."""
    names = list_codecs() if not requested or requested == ["all"] else requested
    runnable, skipped = [], []
    for name in names:
        reason = get_codec(name).unavailable_reason()
        (skipped.append(reason) if reason else runnable.append(name))
    return runnable, skipped


def markdown_table(rows: list[BenchRow]) -> str:
    """The summary table of the README and docs/benchmarks: ratio, PSNR, speed and violations per codec."""
    lines = ["| field | rel eb | codec | ratio | bits/value | PSNR dB | SSIM | max err/eb | bound | comp MB/s | "
             "decomp MB/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.field} | {r.eb_rel:.0e} | {r.codec} | failed: {r.error} |||||||||")
            continue
        lines.append(f"| {r.field} | {r.eb_rel:.0e} | {r.codec} | {r.ratio:.2f} | {r.bit_rate:.3f} | {r.psnr_db:.2f} | "
                     f"{r.ssim:.4f} | {r.max_err_over_eb:.4f} | {'held' if r.bound_held else '**VIOLATED**'} | "
                     f"{r.compress_mb_s:.1f} | {r.decompress_mb_s:.1f} |")
    return "\n".join(lines)


def summary(rows: list[BenchRow], reference: str = "srnsz-interp") -> str:
    """Geometric-mean ratio of each codec against `reference` per bound, and every bound violation."""
    out = []
    for bound in sorted({r.eb_rel for r in rows}, reverse=True):
        at = [r for r in rows if r.eb_rel == bound]
        ours = {r.field: r.ratio for r in at if r.codec == reference}
        for codec in dict.fromkeys(r.codec for r in at):
            if codec == reference:
                continue
            gains = [ours[r.field] / r.ratio for r in at if r.codec == codec and r.field in ours and not r.error]
            if gains:
                mean = float(np.exp(np.mean(np.log(gains))))
                out.append(f"rel {bound:.0e}: {reference} / {codec} ratio, geometric mean {mean:.3f} "
                           f"(min {min(gains):.3f}, {len(gains)} fields)")
    failures = [r for r in rows if r.error]
    violations = [r for r in rows if not r.bound_held and not r.error]
    out.append("bound violations: " + (", ".join(f"{r.codec} on {r.field} at {r.eb_rel:.0e} "
                                                  f"(max err {r.max_err_over_eb:.4f} eb)" for r in violations)
                                       if violations else "none"))
    if failures:
        out.append("failed runs: " + "; ".join(f"{r.codec} on {r.field} at {r.eb_rel:.0e} ({r.error})"
                                                for r in failures))
    return "\n".join(out)


def overview_table(rows: list[BenchRow], reference: str = "srnsz-interp") -> str:
    """Per codec and bound over all fields: geometric-mean ratio, `reference`'s advantage, mean PSNR,
    median compress/decompress speed, bound violations."""
    bounds = sorted({r.eb_rel for r in rows}, reverse=True)
    lines = ["| codec | " + " | ".join(f"rel {b:.0e}: CR (ours / it), PSNR" for b in bounds) +
             " | MB/s c/d (median) | violations |", "|---" * (len(bounds) + 3) + "|"]
    for codec in dict.fromkeys(r.codec for r in rows):
        cells = []
        for bound in bounds:
            mine = {r.field: r for r in rows if r.codec == codec and r.eb_rel == bound and not r.error}
            ours = {r.field: r.ratio for r in rows if r.codec == reference and r.eb_rel == bound}
            if not mine:
                cells.append("-")
                continue
            geo = float(np.exp(np.mean([np.log(r.ratio) for r in mine.values()])))
            adv = [ours[f] / r.ratio for f, r in mine.items() if f in ours]
            adv_text = f"{np.exp(np.mean(np.log(adv))):.2f}x" if adv and codec != reference else "1"
            psnr = np.mean([r.psnr_db for r in mine.values() if np.isfinite(r.psnr_db)])
            cells.append(f"{geo:.1f} ({adv_text}), {psnr:.1f}")
        mine_all = [r for r in rows if r.codec == codec and not r.error]
        failed = sum(1 for r in rows if r.codec == codec and r.error)
        speed = f"{np.median([r.compress_mb_s for r in mine_all]):.1f} / " \
                f"{np.median([r.decompress_mb_s for r in mine_all]):.1f}" if mine_all else "-"
        violations = sum(not r.bound_held for r in mine_all)
        lines.append(f"| {codec} | " + " | ".join(cells) + f" | {speed} | {violations}"
                     + (f" ({failed} runs failed)" if failed else "") + " |")
    return "\n".join(lines)


def write_results(rows: list[BenchRow], out_dir: Path) -> list[Path]:
    """results.csv, results.json and results.md in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(BenchRow)]
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    (out_dir / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    (out_dir / "results.md").write_text(overview_table(rows) + "\n\n" + markdown_table(rows) + "\n\n" +
                                        summary(rows) + "\n")
    return [out_dir / "results.csv", out_dir / "results.json", out_dir / "results.md"]
