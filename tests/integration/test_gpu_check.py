"""The prepared device check (benchmarks/gpu_check.py) runs where there is no GPU: its CPU part passes and it says
that the CUDA part was skipped, so the one short run a GPU machine gets is not spent on a broken script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_device_check_passes_on_the_cpu_and_uses_every_network():
    import torch

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gpu_check: OK" in done.stdout and "cpu: float64 kernels give NumPy bits" in done.stdout
    for name in ("hat_v1_9", "ae_v1_9", "hat_v1_16", "ae_v1_16"):
        assert f"golden {name} decoded on cpu: the expected bits" in done.stdout
    if not torch.cuda.is_available():
        assert "the CUDA pairs were skipped" in done.stdout
    for case in ("hat 40x48x56", "ae 16x24x24", "hat 96^3"):  # each used its network and decoded to the same bits
        line = next(line for line in done.stdout.splitlines() if line.startswith(case + " rel"))
        assert "network blocks 0)" not in line and "the same bits, bound held" in line
