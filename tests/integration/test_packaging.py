"""A wheel (pip install ., not -e) carries what srnsz reads at run time: the compiled kernels, configs/ and
pretrained/ (srnsz.assets finds them inside the package), with networks/ and training/ inside srnsz."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from srnsz.assets import SHIPPED, asset_dir

ROOT = Path(__file__).resolve().parents[2]


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
    assert {"srnsz/networks/__init__.py", "srnsz/training/train.py"} <= names
    assert not {n.split("/")[0] for n in names} & {"networks", "training"}  # nothing generic at top level
    # installed alone (no checkout on the path, no train extra), the wheel compresses with interp and hat
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    check = ("import importlib.util, sys, srnsz; assert srnsz.__file__.startswith(sys.argv[2]), srnsz.__file__; "
             "assert importlib.util.find_spec('networks') is None and importlib.util.find_spec('training') is None; "
             + WITHOUT_TRAIN_EXTRA.split("from srnsz import cli")[0])
    run = subprocess.run([sys.executable, "-c", check, "unused", str(site)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)})
    assert run.returncode == 0, run.stderr[-2000:]


def test_version_is_the_installed_distributions():
    from importlib import metadata

    import srnsz

    assert srnsz.__version__ == metadata.version("srnsz")


WITHOUT_TRAIN_EXTRA = """
import sys
for name in ("hydra", "omegaconf", "matplotlib"):  # as if pip install srnsz without [train]
    sys.modules[name] = None
import numpy as np
import srnsz
x = np.add.outer(np.sin(np.linspace(0, 6, 80)), np.cos(np.linspace(0, 5, 72))).astype(np.float32)
for predictor in ("interp", "hat"):
    stream = srnsz.compress(x, 1e-3, "rel", predictor=predictor)
    assert np.abs(srnsz.decompress(stream).astype(np.float64) - x).max() <= srnsz.info(stream).error_bound["abs"]
from srnsz import cli
print("eval exit", cli.main(["eval", "--example", "--eb", "1e-2", "--plot", sys.argv[1]]))
from srnsz.training import cli as train_cli
try:
    train_cli.main()
except SystemExit as exc:
    print("train exit", exc.code)
"""


@pytest.mark.slow
def test_without_the_train_extra_srnsz_compresses_and_says_what_figures_and_training_need(tmp_path):
    plot = tmp_path / "p.png"
    run = subprocess.run([sys.executable, "-c", WITHOUT_TRAIN_EXTRA, str(plot)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "eval exit 1" in run.stdout and "train exit 2" in run.stdout
    assert "pip install 'srnsz[train]'" in run.stderr and "Traceback" not in run.stderr
    assert "srnsz-train: error: training needs hydra, omegaconf, matplotlib" in run.stderr
    assert not plot.exists()


def test_the_core_install_leaves_hydra_and_matplotlib_to_the_train_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "hydra" not in core and "matplotlib" not in core
    train = " ".join(project["optional-dependencies"]["train"])
    assert "hydra-core" in train and "matplotlib" in train
    assert project["scripts"]["srnsz-train"] == "srnsz.training.cli:main"


@pytest.mark.slow
@pytest.mark.training
def test_the_srnsz_train_command_composes_a_recipe_with_the_train_extra(tmp_path):
    pytest.importorskip("hydra")
    command = Path(sys.executable).parent / "srnsz-train"
    if not command.exists():
        pytest.skip("srnsz-train is not installed beside this interpreter")
    run = subprocess.run([str(command), "experiment=finetune", "--cfg", "job"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "srnsz.networks.create_model" in run.stdout and "Traceback" not in run.stderr
