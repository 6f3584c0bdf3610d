"""Networks in fixed point (format 1.16, the same bits on every machine) against the same networks in float32.

    python benchmarks/portable_neural.py gains [FIELDS] [--model M] [--rel 1e-2 1e-3]
        per field and bound: interp's ratio, hat's gain over it with the network in float32 and in fixed point
        (default fields: the shared fields the shipped hat networks were not trained on; --model: the default
        network of --predictor hat)
    python benchmarks/portable_neural.py speed FIELD [--model M] [--rel 1e-3] [--repeat 3]
        MB/s both ways, median of --repeat after a warm-up, fixed point and float32 alternating, and interp's
        (FIELD ``grayscott96``: the 96^3 speed field, Gray-Scott run A at t7500 resampled 1.5x by cubic splines)
    python benchmarks/portable_neural.py cost [FIELDS] [--model M] [--rel 1e-2 1e-3]
        compression time of `--predictor hat` over interp's (best of 2 each), where the interp stream is kept and
        where the network is used (default fields: every shared field)
    python benchmarks/portable_neural.py rules [FIELDS] [--model M] [--rel 1e-2 1e-3 1e-4]
        how the network's trial on the sample went (srnsz.predictors.hat.GiveUp): per stage reached -- the probe,
        the first plane set, the first pass -- the block choices' L1 error and coded bytes as shares of
        interpolation's and the verdict; the stream kept and its gain; and the gain with every rule off (the network
        forced onto the whole field: whether giving it up lost anything) (default fields: the shared 3D fields)
    python benchmarks/portable_neural.py psnr [FIELDS] [--models ...]
        prediction PSNR of each network's x2 upsampling of clean coarse planes, float32 and fixed point, and of
        the cubic spline (the network's skip path)

One process; the hat predictor's defaults otherwise. Every stream is decoded and checked against the bound.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import srnsz
from srnsz.neural.runtime import FIXED_POINT, FLOAT
from srnsz.predictors.hat import DEFAULT_MODEL

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UNSEEN = ["sperr_vorticity_512x512", "grayscott_pypde_64", "plot3d_comb_density", "ncep_climo_U_17x64x128"]


SPEED_FIELD = "grayscott96"


def speed_field() -> np.ndarray:
    """96^3 float32: the shared Gray-Scott snapshot timeseries/grayscott_A_t7500_64 resampled 1.5x by periodic cubic
    splines (a network pays on it: hat_femto_series gains 1.11x over interp at rel 1e-3)."""
    from scipy import ndimage

    snapshot = np.load(DATA / "timeseries" / "grayscott_A_t7500_64.npy").astype(np.float64)
    return ndimage.zoom(snapshot, 1.5, order=3, mode="grid-wrap").astype(np.float32)


def load(name: str) -> tuple[str, np.ndarray]:
    if name == SPEED_FIELD:
        return name, speed_field()
    path = Path(name)
    if not path.exists():
        path = DATA / f"{name}.npy"
    return path.stem, np.load(path)


def checked(data: np.ndarray, stream: bytes) -> None:
    recon = srnsz.decompress(stream)
    eb = srnsz.info(stream).error_bound["abs"]
    assert np.abs(recon.astype(np.float64) - data).max() <= eb


def gains(args: argparse.Namespace) -> None:
    print(f"model {args.model}")
    print("| field | rel | interp CR | float32 gain | fixed-point gain | fixed / float | blocks (fixed) |")
    print("|---|---|---|---|---|---|---|")
    per_rel: dict[float, list[tuple[float, float]]] = {rel: [] for rel in args.rel}
    for name in args.fields or UNSEEN:
        stem, data = load(name)
        for rel in args.rel:
            plain = srnsz.compress(data, rel, "rel")
            row = []
            for arithmetic in (FLOAT, FIXED_POINT):
                stream = srnsz.compress(data, rel, "rel", "hat", model=args.model, arithmetic=arithmetic)
                checked(data, stream)
                row.append((len(plain) / len(stream), srnsz.info(stream)))
            (g_float, _), (g_fixed, made) = row
            hat = made.predictor_params.get("hat", {})
            blocks = f"{hat['blocks_hat']}/{hat['blocks_total']}" if hat else "interp kept"
            per_rel[rel].append((g_float, g_fixed))
            print(f"| {stem} | {rel:g} | {data.nbytes / len(plain):.2f} | {g_float:.3f} | {g_fixed:.3f} | "
                  f"{g_fixed / g_float:.4f} | {blocks} |", flush=True)
    for rel, pairs in per_rel.items():
        geo = np.exp(np.mean(np.log(np.array(pairs)), axis=0))
        print(f"geo-mean gain at rel {rel:g}: float32 {geo[0]:.3f}, fixed point {geo[1]:.3f} (min fixed "
              f"{min(p[1] for p in pairs):.3f})")


def speed(args: argparse.Namespace) -> None:
    stem, data = load(args.fields[0])
    mb = data.nbytes / 1e6
    runs = {"interp": {}, FLOAT: {"arithmetic": FLOAT}, FIXED_POINT: {"arithmetic": FIXED_POINT}}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    streams: dict[str, bytes] = {}
    for repeat in range(args.repeat + 1):  # the first round warms up
        for key, options in runs.items():
            t0 = time.perf_counter()
            if key == "interp":
                stream = srnsz.compress(data, args.rel, "rel")
            else:
                stream = srnsz.compress(data, args.rel, "rel", "hat", model=args.model, **options)
            t1 = time.perf_counter()
            srnsz.decompress(stream)
            t2 = time.perf_counter()
            if repeat:
                times[key].append((t1 - t0, t2 - t1))
            streams[key] = stream
    print(f"{stem} ({mb:.1f} MB), rel {args.rel:g}, model {args.model}, median of {args.repeat} after a warm-up")
    print("| run | predictor kept | ratio | compress MB/s | decompress MB/s |")
    print("|---|---|---|---|---|")
    for key, pairs in times.items():
        c = statistics.median(p[0] for p in pairs)
        d = statistics.median(p[1] for p in pairs)
        made = srnsz.info(streams[key])
        print(f"| {key} | {made.predictor} | {data.nbytes / len(streams[key]):.2f} | {mb / c:.2f} | {mb / d:.2f} |")


def cost(args: argparse.Namespace) -> None:
    print(f"model {args.model}")
    print("| field | rel | kept | hat time / interp time | ratio / interp |")
    print("|---|---|---|---|---|")
    kept: list[float] = []
    for name in args.fields or sorted(p.stem for p in DATA.glob("*.npy")):
        stem, data = load(name)
        for rel in args.rel:
            interp_s, hat_s = [], []
            for _ in range(2):
                t0 = time.perf_counter()
                plain = srnsz.compress(data, rel, "rel")
                t1 = time.perf_counter()
                stream = srnsz.compress(data, rel, "rel", "hat", model=args.model)
                hat_s.append(time.perf_counter() - t1)
                interp_s.append(t1 - t0)
            checked(data, stream)
            predictor, share = srnsz.info(stream).predictor, min(hat_s) / min(interp_s)
            if predictor == "interp":
                kept.append(share)
            print(f"| {stem} | {rel:g} | {predictor} | {share:.2f} | {len(plain) / len(stream):.3f} |", flush=True)
    if kept:
        print(f"interp kept on {len(kept)} pairs: median {statistics.median(kept):.2f}x, max {max(kept):.2f}x, "
              f"{sum(k > 2 for k in kept)} above 2x")


@contextlib.contextmanager
def judgements() -> Iterator[list[str]]:
    """Every verdict of srnsz.predictors.hat.GiveUp while the block runs: 'stage: L1 share, coded share -> verdict'."""
    from srnsz.predictors import hat

    seen: list[str] = []
    real = {name: getattr(hat.GiveUp, name) for name in ("one_view_reason", "reason")}

    def record(name: str, rules: hat.GiveUp, interp: hat.FirstPassErrors, chosen: hat.FirstPassErrors,
               flag_bytes: float, *what: str) -> str | None:
        verdict = real[name](rules, interp, chosen, flag_bytes, *what)
        stage = "first pass" if name == "reason" else "probe" if what else "first set"
        l1 = chosen.l1 / interp.l1 if interp.l1 else 1.0
        coded = f"{1 - chosen.coded / interp.coded:+.3f}" if interp.coded else "-"
        seen.append(f"{stage}: L1 {l1:.3f}, coded {coded} -> {'given up' if verdict else 'on'}")
        return verdict

    try:
        for name in real:
            setattr(hat.GiveUp, name, lambda *a, _name=name: record(_name, *a))
        yield seen
    finally:
        for name, method in real.items():
            setattr(hat.GiveUp, name, method)


def rules(args: argparse.Namespace) -> None:
    from srnsz.predictors.hat import HatPolicy

    forced = HatPolicy(sample_min_gain=1e-9, give_up_l1_share=math.inf, give_up_beyond_share=math.inf,
                       give_up_one_view_share=math.inf, network_stream_bytes=-math.inf)
    print(f"model {args.model}")
    print("| field | rel | the trial on the sample | kept | gain | gain, every rule off |")
    print("|---|---|---|---|---|---|")
    names = args.fields or sorted(p.stem for p in DATA.glob("*.npy") if np.load(p, mmap_mode="r").ndim == 3)
    for name in names:
        stem, data = load(name)
        for rel in args.rel:
            plain = len(srnsz.compress(data, rel, "rel"))
            with judgements() as seen:
                stream = srnsz.compress(data, rel, "rel", "hat", model=args.model)
            checked(data, stream)
            every = srnsz.compress(data, rel, "rel", "hat", model=args.model, policy=forced)
            print(f"| {stem} | {rel:g} | {'; '.join(seen) or 'not judged'} | {srnsz.info(stream).predictor} | "
                  f"{plain / len(stream):.3f} | {plain / len(every):.3f} |", flush=True)


def psnr(args: argparse.Namespace) -> None:
    import torch

    from srnsz.networks.upsample import cubic_upsample2x
    from srnsz.neural import fixed_point
    from srnsz.neural.zoo import load_pretrained

    print("| network | field | cubic PSNR | float32 PSNR | fixed-point PSNR | max abs difference |")
    print("|---|---|---|---|---|---|")
    for model_name in args.models:
        model, _ = load_pretrained(model_name)
        for name in args.fields or UNSEEN:
            stem, data = load(name)
            fine = data if data.ndim == 2 else data[data.shape[0] // 2]
            fine = fine[: fine.shape[0] // 2 * 2, : fine.shape[1] // 2 * 2].astype(np.float64)
            fine = (fine - fine.min()) / (fine.max() - fine.min())
            coarse = torch.from_numpy(fine[None, None, ::2, ::2].copy())
            extra_float, extra_fixed = {}, {}
            if model.bound_channel:
                extra_float["bound"] = torch.tensor([1e-3])
                extra_fixed["levels"] = torch.tensor([fixed_point.bound_level(1e-3)], dtype=torch.float64)
            if model.context_planes:
                extra_float["context"] = coarse.repeat(1, 2, 1, 1).float()
                extra_fixed["context"] = coarse.repeat(1, 2, 1, 1)
            with torch.inference_mode():
                floating = model(coarse.float(), **extra_float).clamp(0, 1).double()[0, 0].numpy()
                fixed = fixed_point.hat_forward(model, coarse, **extra_fixed, arithmetic=FIXED_POINT)
                fixed = fixed.clamp(0, 1)[0, 0].numpy()
                cubic = cubic_upsample2x(coarse)[0, 0].numpy()
            db = [float(10 * np.log10(1.0 / np.mean((pred - fine) ** 2))) for pred in (cubic, floating, fixed)]
            print(f"| {model_name} | {stem} | {db[0]:.2f} | {db[1]:.2f} | {db[2]:.2f} | "
                  f"{np.abs(fixed - floating).max():.2e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["gains", "speed", "cost", "rules", "psnr"])
    parser.add_argument("fields", nargs="*")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, "hat_pico_series", "hat_nano_series"])
    parser.add_argument("--rel", type=float, nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.rel = args.rel or ([1e-2, 1e-3, 1e-4] if args.what == "rules" else [1e-2, 1e-3])
    if args.what == "speed":
        if len(args.fields) != 1:
            parser.error("speed takes one field")
        args.rel = args.rel[0]
        speed(args)
    else:
        {"gains": gains, "cost": cost, "rules": rules, "psnr": psnr}[args.what](args)


if __name__ == "__main__":
    main()
