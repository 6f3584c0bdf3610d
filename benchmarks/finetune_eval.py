"""hat (with a given model) against interp on held-out fields: ratio, gain, blocks won, MB/s both ways.

    SRNSZ_WEIGHTS=runs/weights python benchmarks/finetune_eval.py --model gs_hat \\
        ../shared/data/timeseries/grayscott_A_t7500_64.npy ... [--rel 1e-2 1e-3]

One process, the hat predictor's default inference settings (2 threads). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import srnsz


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fields", nargs="+")
    parser.add_argument("--model", default="hat_tiny")
    parser.add_argument("--rel", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--hat-levels", type=int, help="how many finest levels use the network (default: hat's)")
    args = parser.parse_args()
    print(f"model {args.model}" + (f", hat_levels {args.hat_levels}" if args.hat_levels else ""))
    print("| field | rel | interp CR | hat CR | gain | blocks won | hat MB/s c / d | interp MB/s c / d |")
    print("|---|---|---|---|---|---|---|---|")
    gains: dict[float, list[float]] = {rel: [] for rel in args.rel}
    for path in args.fields:
        data = np.load(path)
        mb = data.nbytes / 1e6
        for rel in args.rel:
            plain, t_ic = timed(srnsz.compress, data, rel, "rel")
            _, t_id = timed(srnsz.decompress, plain)
            options = {"model": args.model} | ({"hat_levels": args.hat_levels} if args.hat_levels else {})
            hat, t_hc = timed(srnsz.compress, data, rel, "rel", "hat", **options)
            _, t_hd = timed(srnsz.decompress, hat)
            info = srnsz.info(hat)
            params = info.predictor_params.get("hat", {})
            won = f"{params['blocks_hat']}/{params['blocks_total']}" if "blocks_hat" in params else "0 (interp kept)"
            gain = len(plain) / len(hat)
            gains[rel].append(gain)
            print(f"| {Path(path).stem} | {rel:g} | {data.nbytes / len(plain):.2f} | {data.nbytes / len(hat):.2f} | "
                  f"{gain:.3f} | {won} | {mb / t_hc:.2f} / {mb / t_hd:.2f} | {mb / t_ic:.2f} / {mb / t_id:.2f} |",
                  flush=True)
    for rel, values in gains.items():
        print(f"geo-mean hat/interp at rel {rel:g}: {float(np.exp(np.mean(np.log(values)))):.3f}")


if __name__ == "__main__":
    main()
