"""Shared helpers: generated fields and the no-slack bound check; the markers of tests that read the shared data."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import srnsz
from srnsz.examples import wave_field
from srnsz.format.container import read_container, write_container

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_DATA_NAMES = ("SHARED_DATA", "NETCDF_FILES")  # how a test reaches ../shared/data


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read ../shared/data get the ``shared_data`` marker (pytest -m "not shared_data" leaves them out)."""
    for item in items:
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if item.path.name == "test_shared_data.py" or any(name in source for name in SHARED_DATA_NAMES):
            item.add_marker(pytest.mark.shared_data)


def smooth_field(shape: tuple[int, ...], dtype=np.float32, seed: int = 0, waves: int = 4, top: float = 6.0,
                 noise: float = 0.01) -> np.ndarray:
    """Sum of ``waves`` random low-frequency waves (1 to ``top`` periods per axis) plus a little noise."""
    return wave_field(shape, dtype, seed, waves, top, noise)


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """``srnsz *args`` in a subprocess: it must exit 0 (``ok``) or not, and never with a traceback."""
    proc = subprocess.run([sys.executable, "-m", "srnsz.cli", *args], capture_output=True, text=True, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def series_field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A run over a slow axis 0 (years, members) of a climate with sharp coasts plus large-scale departures whose
    amplitude varies along the other axes by a factor of about 50 and persists along axis 0, as a climate series."""
    rng = np.random.default_rng(seed)
    climate = 10 * smooth_field(shape[1:], np.float64, seed=seed) + 5 * np.sign(smooth_field(shape[1:], seed=seed + 2))
    amplitude = np.exp(2.0 * smooth_field(shape[1:], np.float64, seed=seed + 1))
    departures = rng.standard_normal(shape)
    for axis in range(1, len(shape)):  # spread over a few points across, not along axis 0
        for _ in range(2):
            departures = (np.roll(departures, 1, axis) + departures + np.roll(departures, -1, axis)) / 3
    return (climate + amplitude * departures).astype(np.float32)


def rewritten(stream: bytes, header_change=None, section_change=None) -> bytes:
    """``stream`` written again after ``header_change(header)`` and ``section_change(sections)`` (dicts, changed in
    place), its checksums valid: what a hostile or damaged header looks like past the CRCs."""
    container = read_container(stream)
    header, sections = dict(container.header), dict(container.sections)
    if header_change:
        header_change(header)
    if section_change:
        section_change(sections)
    return write_container(header, sections, container.version[1])


def assert_bound(original: np.ndarray, recon: np.ndarray, eb: float) -> None:
    """|x - x'| <= eb for every finite value, exactly; NaN/Inf bit for bit; shape and dtype kept."""
    assert recon.shape == original.shape and recon.dtype == original.dtype
    finite = np.isfinite(original)
    err = np.abs(original[finite].astype(np.float64) - recon[finite].astype(np.float64))
    assert err.size == 0 or err.max() <= eb, f"max error {err.max()} > eb {eb}"
    bits = f"u{original.itemsize}"
    assert np.array_equal(original[~finite].view(bits), recon[~finite].view(bits))


def roundtrip(data: np.ndarray, eb: float, mode: str = "abs", **kw) -> tuple[np.ndarray, bytes, float]:
    stream = srnsz.compress(data, eb, mode, **kw)
    recon = srnsz.decompress(stream)
    return recon, stream, srnsz.info(stream).error_bound["abs"]


@pytest.fixture
def field3d() -> np.ndarray:
    return smooth_field((20, 33, 47))


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory):
    """Small randomly initialised networks exported like shipped ones (test_hat, test_ae_2d, test_ae_3d), found
    through SRNSZ_WEIGHTS; the mechanics must hold whatever the weights are."""
    torch = pytest.importorskip("torch")
    from srnsz import networks
    from srnsz.training.export import export_weights

    directory = tmp_path_factory.mktemp("test_weights")
    torch.manual_seed(0)
    specs = {"test_hat": ("hat_tiny", {"depths": (1,), "num_heads": (2,), "window_size": 4}),
             "test_ae_2d": ("ae_2d", {"channels": 8}), "test_ae_3d": ("ae_3d", {"channels": 8})}
    for name, (architecture, overrides) in specs.items():
        model = networks.create_model(architecture, **overrides)
        if architecture == "hat_tiny":
            with torch.no_grad():
                model.upsample[-1].weight.normal_(0, 0.001)
        export_weights(model, name, architecture, networks.model_kwargs(architecture, **overrides), "test", {}, {},
                       directory)
    return directory


@pytest.fixture()
def with_test_weights(test_weights, monkeypatch):
    monkeypatch.setenv("SRNSZ_WEIGHTS", str(test_weights))
    return test_weights


# Runs CLI commands one after the other in a child, printing each one's exit code, time and peak working memory
# (VmHWM minus VmRSS just before it, VmHWM reset through /proc/self/clear_refs).
MEASURED_CLI_CHILD = """
import json, sys, time

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

import tqdm
from srnsz.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before, start = status("VmRSS"), time.perf_counter()
    code = main(argv)
    results.append([code, time.perf_counter() - start, status("VmHWM") - before])
print(json.dumps(results))
"""


def measured_cli_runs(commands: list[list[str]]) -> list[tuple[int, float, int]]:
    """(exit code, seconds, peak working bytes) of each CLI command, run one after the other in one child."""
    proc = subprocess.run([sys.executable, "-c", MEASURED_CLI_CHILD, json.dumps(commands)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [tuple(r) for r in json.loads(proc.stdout.splitlines()[-1])]
