"""A wheel (pip install ., not -e) carries what srnsz reads at run time: the compiled kernels, configs/ and
pretrained/ (srnsz.assets finds them inside the package)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from srnsz.assets import SHIPPED, asset_dir

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_folders_are_found():
    for name in SHIPPED:
        assert asset_dir(name).is_dir()
    assert (asset_dir("pretrained") / "manifest.json").is_file()
    assert (asset_dir("configs") / "train.yaml").is_file()


def test_the_wheel_carries_the_coder_the_configs_and_the_weights(tmp_path):
    pytest.importorskip("setuptools")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel, = tmp_path.glob("srnsz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for compiled in ("srnsz/coding/_mixing", "srnsz/coding/_details", "srnsz/decomposition/_interpolation",
                     "srnsz/_quantizer"):  # every kernel srnsz loads with ctypes
        assert any(n.startswith(compiled) and n.endswith(".so") for n in names), compiled
    assert "srnsz/_assets/pretrained/manifest.json" in names
    assert "srnsz/_assets/configs/train.yaml" in names
    assert "srnsz/_assets/configs/data/split/shared_2d.yaml" in names
    shipped = {p.name for p in (ROOT / "pretrained").iterdir()}
    assert shipped <= {Path(n).name for n in names if n.startswith("srnsz/_assets/pretrained/")}
    assert {"networks/__init__.py", "training/train.py"} <= names
