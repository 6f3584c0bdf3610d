"""Neural predictors against the classical path on ../shared/data, field by field.

  python benchmarks/neural_predictors.py hat [--rel 1e-2 5e-3] [--model hat_tiny]   # hat vs interp
      [--fields sperr_vorticity_512x512 timeseries/grayscott_A_t7500_64 ...]   # these only (default: every
      2D/3D field directly in ../shared/data)
  python benchmarks/neural_predictors.py ae  [--rel 1e-2]        # issue 4 table: ae vs lorenzo/interp/SZ3/ZFP

Every row asserts the bound on the decoded data. Times are wall clock on the machine that runs it (one run each);
"net %" is the share of compression time spent inside the network.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import srnsz
from srnsz.eval.bench import valid_mask
from srnsz.missing import MissingRule
from srnsz.predictors import blockwise, hat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class NetworkClock:
    """Accumulates time spent in the network calls of the hat and ae predictors."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._upsample, self._decode = hat.upsample_planes, blockwise.decode_blocks

    def __enter__(self) -> NetworkClock:
        def timed(fn):
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - t0
            return wrapper

        hat.upsample_planes = timed(self._upsample)
        blockwise.decode_blocks = timed(self._decode)
        return self

    def __exit__(self, *exc: object) -> None:
        hat.upsample_planes, blockwise.decode_blocks = self._upsample, self._decode


def run(data: np.ndarray, eb: float, predictor: str, **options) -> dict:
    with NetworkClock() as clock:
        t0 = time.perf_counter()
        stream = srnsz.compress(data, eb, "abs", predictor=predictor, **options)
        t1 = time.perf_counter()
        net_compress = clock.seconds
        recon = srnsz.decompress(stream)
        t2 = time.perf_counter()
    err = np.abs(recon.astype(np.float64) - data.astype(np.float64))
    assert np.all(err[np.isfinite(data)] <= eb), f"{predictor}: bound violated"
    info = srnsz.info(stream)
    return {"cr": data.nbytes / len(stream), "c": data.nbytes / 1e6 / (t1 - t0), "d": data.nbytes / 1e6 / (t2 - t1),
            "net": net_compress / (t1 - t0), "kept": info.predictor, "params": info.predictor_params,
            "seconds": t1 - t0}


def fields(ndims: tuple[int, ...], names: list[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, data) of the 2D/3D fields: ``names`` (paths under ../shared/data, .npy optional) or every field
    directly in it."""
    paths = [DATA / (n if n.endswith(".npy") else f"{n}.npy") for n in names] if names else sorted(DATA.glob("*.npy"))
    out = []
    for path in paths:
        data = np.load(path)
        if data.ndim in ndims:
            out.append((path.stem, data))
    return out


def hat_table(rels: list[float], model: str, names: list[str] | None = None, decoded_planes: bool = True) -> None:
    print(f"model {model}, decoded_planes {decoded_planes}")
    print("| field | rel eb | interp CR | hat CR | hat/interp | HAT blocks | hat MB/s c/d | interp MB/s c/d | "
          "hat/interp compress time | net % of compress |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    gains: dict[float, list[float]] = {r: [] for r in rels}
    costs: list[float] = []  # compress time hat / interp where the interp stream was kept
    chosen = fields((2, 3), names)
    first = chosen[0][1]
    # torch and the weights loaded before timing
    run(first, 1e-2 * float(np.ptp(first)), "hat", model=model, decoded_planes=decoded_planes)
    for name, data in chosen:
        valid = valid_mask(data, MissingRule())
        value_range = float(np.ptp(data[valid].astype(np.float64)))
        for rel in rels:
            eb = rel * value_range
            base = run(data, eb, "interp")
            ours = run(data, eb, "hat", model=model, decoded_planes=decoded_planes)
            h = ours["params"].get("hat")
            share = f"{h['blocks_hat']}/{h['blocks_total']}" if h else "interp stream kept"
            gains[rel].append(ours["cr"] / base["cr"])
            cost = ours["seconds"] / base["seconds"]
            if not h:
                costs.append(cost)
            print(f"| {name} | {rel:g} | {base['cr']:.2f} | {ours['cr']:.2f} | {ours['cr'] / base['cr']:.3f} | "
                  f"{share} | {ours['c']:.2f} / {ours['d']:.2f} | {base['c']:.2f} / {base['d']:.2f} | {cost:.1f} | "
                  f"{100 * ours['net']:.0f} |", flush=True)
    for rel, g in gains.items():
        print(f"rel {rel:g}: geometric mean hat/interp {np.exp(np.mean(np.log(g))):.3f}, min {min(g):.3f}, "
              f"max {max(g):.3f}")
    if costs:
        print(f"where the interp stream was kept ({len(costs)}): hat compress time / interp's median "
              f"{float(np.median(costs)):.1f}x, max {max(costs):.1f}x")


def ae_table(rels: list[float]) -> None:
    from srnsz.eval.peers import get_codec

    print("| field | rel eb | ae (blocks) CR | ae (+interp) CR | lorenzo CR | interp CR | SZ3 CR | ZFP CR | "
          "AE blocks | ae blocks / lorenzo | ae MB/s c/d |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, data in fields((2, 3)):
        valid = valid_mask(data, MissingRule())
        value_range = float(np.ptp(data[valid].astype(np.float64)))
        for rel in rels:
            eb = rel * value_range
            blocks = run(data, eb, "ae", compete_interp=False)
            if blocks["kept"] != "ae":
                continue  # not a 2D/3D field
            full = run(data, eb, "ae")
            lorenzo = run(data, eb, "lorenzo")
            interp = run(data, eb, "interp")
            peers = {}
            for peer in ("sz3", "zfp"):
                codec = get_codec(peer)
                peers[peer] = data.nbytes / codec.compress(data, eb).nbytes if not codec.unavailable_reason() \
                    else float("nan")
            b = blocks["params"]["blocks"]
            total = sum(b.values())
            print(f"| {name} | {rel:g} | {blocks['cr']:.2f} | {full['cr']:.2f} ({full['kept']}) | "
                  f"{lorenzo['cr']:.2f} | {interp['cr']:.2f} | {peers['sz3']:.2f} | {peers['zfp']:.2f} | "
                  f"{b['ae']}/{total} ({100 * b['ae'] / total:.1f}%) | {blocks['cr'] / lorenzo['cr']:.3f} | "
                  f"{blocks['c']:.2f} / {blocks['d']:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["hat", "ae"])
    parser.add_argument("--rel", type=float, nargs="+")
    parser.add_argument("--model", default="hat_tiny", help="hat weights name(s), comma-separated")
    parser.add_argument("--fields", nargs="+", help="fields under ../shared/data (default: every one directly in it)")
    parser.add_argument("--coarse-planes-only", action="store_true",
                        help="hat without decoded_planes (the network on the coarse planes only, format <= 1.4)")
    args = parser.parse_args()
    if args.which == "hat":
        hat_table(args.rel or [1e-2, 5e-3], args.model, args.fields, not args.coarse_planes_only)
    else:
        ae_table(args.rel or [1e-2])


if __name__ == "__main__":
    main()
