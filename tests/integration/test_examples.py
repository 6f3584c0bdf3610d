"""The scripts in examples/ run as a user runs them (a fresh interpreter, an output folder argument), finish, write
what they say into that folder and nothing into the folder they run from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# script -> (optional packages it needs, extra arguments, files it must write under the output folder)
CASES = {
    "netcdf_to_zarr.py": (["xarray", "zarr", "scipy"], [], ["ocean.nc", "ocean.zarr", "ocean_back.nc"]),
    "psnr_error_map.py": (["matplotlib"], ["--psnr", "55"], ["error_map.png"]),
    "finetune_series.py": (["torch", "hydra"], ["--steps", "2"], ["weights/manifest.json", "run", "t5.hat.srnsz"]),
    "dask_to_zarr.py": (["dask.array", "zarr"], [], ["field.zarr/zarr.json"]),
}


def test_every_example_has_a_test():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


TRAINS = {"finetune_series.py"}  # examples that run a training loop (7 s)


@pytest.mark.parametrize("script", [pytest.param(s, marks=[pytest.mark.training, pytest.mark.slow]) if s in TRAINS
                                    else s for s in sorted(CASES)])
def test_example_runs_and_writes_only_into_its_folder(script, tmp_path):
    needs, args, outputs = CASES[script]
    for module in needs:
        pytest.importorskip(module)
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), str(out), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()  # it reports what it did
    for name in outputs:
        assert (out / name).exists(), name
    assert not list(cwd.iterdir())
