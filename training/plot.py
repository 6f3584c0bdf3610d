"""Validation curves from a run's val_log.jsonl as a PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot_validation(log_path: Path, png_path: Path, title: str = "") -> Path:
    """Prediction PSNR of the network (EMA weights) and of its baseline against training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    steps = [e["step"] for e in entries]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(steps, [e["psnr"] for e in entries], marker="o", ms=3, label="network (EMA)")
    ax.plot(steps, [e["baseline_psnr"] for e in entries], ls="--", label="baseline")
    ax.set_xlabel("training step")
    ax.set_ylabel("prediction PSNR on held-out data (dB)")
    ax.set_title(title or Path(log_path).parent.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)


if __name__ == "__main__":
    plot_validation(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
