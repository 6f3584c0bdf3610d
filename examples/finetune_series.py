"""Fine-tune the shipped network on the first snapshots of a time series, then compress the rest with it.

    python examples/finetune_series.py OUT_DIR [--steps 200]

A generated 2-D time series (drifting, sharpening fronts) is cut in two: the first snapshots train the network
(the `experiment=finetune` recipe, composed with Hydra overrides), the others are compressed with it and with plain
interpolation. Everything is written under OUT_DIR: the snapshots, the training run (checkpoint, validation log),
the exported weights (OUT_DIR/weights) and the streams. The recipe trains 10000 steps on real data; a few steps
show the mechanics in seconds. The command-line equivalent:

    srnsz-train experiment=finetune data.train_files=[t0.npy,t1.npy,...] export.name=my_hat \\
        export.directory=OUT_DIR/weights
    SRNSZ_WEIGHTS=OUT_DIR/weights srnsz compress t9.npy -o t9.srnsz --predictor hat --model my_hat
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

import srnsz
from srnsz.assets import asset_dir


def snapshot(t: int, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    """Snapshot ``t`` of the series: fronts drifting and sharpening over time, float32."""
    y, x = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    front = np.tanh((y - 0.5 - 0.15 * np.sin(2 * np.pi * (x + 0.05 * t))) / (0.08 / (1 + 0.1 * t)))
    waves = 0.3 * np.sin(6 * np.pi * x + 0.4 * t) * np.cos(4 * np.pi * y - 0.2 * t)
    return (front + waves).astype(np.float32)


def main(out_dir: Path, steps: int = 200, snapshots: int = 6) -> dict[str, float]:
    """Runs the example into ``out_dir``; returns the ratios of the held-out snapshots, hat and interp."""
    from srnsz.training.train import run

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for t in range(snapshots):
        files.append(out_dir / f"t{t}.npy")
        np.save(files[-1], snapshot(t))
    half = snapshots // 2
    train, val, rest = files[: half - 1], files[half - 1: half], files[half:]  # the last training one validates

    overrides = [
        "experiment=finetune", f"data.train_files=[{','.join(str(f) for f in train)}]", f"data.val_files=[{val[0]}]",
        "export.name=my_hat", f"export.directory={out_dir / 'weights'}", f"train.out_dir={out_dir / 'run'}",
        # a short run: the recipe itself trains 10000 steps on 48x48 patches at six bounds
        f"train.steps={steps}", f"train.val_every={steps}", f"train.ckpt_every={steps}", "train.batch_size=4",
        "train.progress=false", "data.patch_size=32", "data.val_samples=8", "data.input_bounds=[1e-2,1e-3]",
        f"optim.milestones=[{steps}]",
    ]
    with initialize_config_dir(config_dir=str(asset_dir("configs")), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    run(cfg)  # writes out_dir/run (checkpoint, validation log and plot) and out_dir/weights (the network)

    os.environ["SRNSZ_WEIGHTS"] = str(out_dir / "weights")  # where --model my_hat is looked up
    ratios = {"hat": [], "interp": []}
    for path in rest:
        data = np.load(path)
        eb = 1e-2 * float(data.max() - data.min())
        for predictor, options in (("hat", {"model": "my_hat"}), ("interp", {})):
            stream = srnsz.compress(data, eb, mode="abs", predictor=predictor, **options)
            assert np.abs(srnsz.decompress(stream) - data).max() <= eb
            path.with_suffix(f".{predictor}.srnsz").write_bytes(stream)
            ratios[predictor].append(data.nbytes / len(stream))
    result = {name: float(np.exp(np.mean(np.log(r)))) for name, r in ratios.items()}
    print(f"held-out snapshots at rel 1e-2, geometric-mean ratio: hat (my_hat) {result['hat']:.2f}, "
          f"interp {result['interp']:.2f} (the plain stream is kept where the network does not pay)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for everything this example writes")
    parser.add_argument("--steps", type=int, default=200, help="training steps (default 200; the recipe: 10000)")
    args = parser.parse_args()
    main(args.out_dir, args.steps)
