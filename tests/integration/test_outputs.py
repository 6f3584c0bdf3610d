"""Outputs: files appear whole with the umask's permissions, devices and fifos are written into and stay what they
are, directories are refused, and SIGTERM (a batch scheduler's) stops everything and leaves nothing behind."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bound, smooth_field

import srnsz
from srnsz.cli import main
from srnsz.io import chunked


@pytest.fixture
def npy(tmp_path) -> tuple[Path, np.ndarray]:
    data = smooth_field((12, 20, 24), seed=4)
    np.save(tmp_path / "f.npy", data)
    return tmp_path / "f.npy", data


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    """A thread reading everything written to fifo ``path`` (opening it blocks until the writer opens its end)."""
    def read() -> None:
        with open(path, "rb") as f:
            into.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_output_is_written_into_and_stays_a_fifo(npy, tmp_path, force):
    path, data = npy
    fifo = tmp_path / "out.srnsz"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    assert main(["compress", str(path), "-o", str(fifo), "--eb", "1e-3"] + ["--force"] * force) == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert_bound(data, srnsz.decompress(got[0]), srnsz.info(got[0]).error_bound["abs"])
    (tmp_path / "s.srnsz").write_bytes(got[0])
    back: list[bytes] = []
    fifo_npy = tmp_path / "back.npy"
    os.mkfifo(fifo_npy)
    reader = _read_fifo(fifo_npy, back)
    assert main(["decompress", str(tmp_path / "s.srnsz"), "-o", str(fifo_npy)] + ["--force"] * force) == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.stat(fifo_npy).st_mode)
    assert np.array_equal(np.load(io.BytesIO(back[0])), srnsz.decompress(got[0]))
    assert not list(tmp_path.glob(".*part*"))


def _device(path: Path, minor: int) -> Path:
    """A character device like /dev/null (minor 3) or /dev/full (7) at ``path`` (made with mknod: root only)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    return path


@pytest.mark.parametrize("force", [False, True])
def test_a_device_output_is_written_into_never_replaced(npy, tmp_path, force):
    path, _ = npy
    null = _device(tmp_path / "null", 3)
    flags = ["--force"] * force
    assert main(["compress", str(path), "-o", str(null), "--chunk", "8", "8", "8", "--threads", "2"] + flags) == 0
    assert main(["compress", str(path), "-o", str(null)] + flags) == 0
    assert stat.S_ISCHR(os.stat(null).st_mode)
    full = _device(tmp_path / "full", 7)
    assert main(["compress", str(path), "-o", str(full)] + flags) == 1  # no space left: an error, not a success
    assert stat.S_ISCHR(os.stat(full).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "full", "null"]


def test_a_directory_output_is_refused(npy, tmp_path, capsys):
    path, _ = npy
    (tmp_path / "d").mkdir()
    for extra in ([], ["--force"]):
        assert main(["compress", str(path), "-o", str(tmp_path / "d")] + extra) == 1
        assert "is a directory" in capsys.readouterr().err
    assert not list((tmp_path / "d").iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(npy, tmp_path, mask):
    path, _ = npy
    old = os.umask(mask)
    try:
        assert main(["compress", str(path), "-o", str(tmp_path / "a.srnsz")]) == 0
        assert main(["compress", str(path), "-o", str(tmp_path / "c.srnsz"), "--chunk", "8", "8", "8"]) == 0
        assert main(["decompress", str(tmp_path / "a.srnsz"), "-o", str(tmp_path / "b.npy")]) == 0
    finally:
        os.umask(old)
    for name in ("a.srnsz", "b.npy", "c.srnsz"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask, name


def test_overwriting_keeps_the_permissions_and_a_symbolic_link(npy, tmp_path):
    path, _ = npy
    real = tmp_path / "real.srnsz"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.srnsz"
    link.symlink_to(real)
    assert main(["compress", str(path), "-o", str(link)]) == 1  # exists
    assert main(["compress", str(path), "-o", str(link), "--force"]) == 0
    assert link.is_symlink() and srnsz.info(real.read_bytes()).shape == (12, 20, 24)
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640


def test_the_input_is_never_the_output_even_with_force(npy, tmp_path, capsys):
    path, _ = npy
    stream = tmp_path / "s.srnsz"
    assert main(["compress", str(path), "-o", str(stream)]) == 0
    (tmp_path / "link.npy").symlink_to(path)
    os.link(stream, tmp_path / "hard.srnsz")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for argv in (["compress", str(path), "-o", str(path)],
                 ["compress", str(path), "-o", str(tmp_path / "link.npy")],
                 ["compress", str(path), "-o", str(tmp_path / "." / "f.npy"), "--chunk", "8", "8", "8"],
                 ["decompress", str(stream), "-o", str(stream)],
                 ["decompress", str(stream), "-o", str(tmp_path / "hard.srnsz")]):
        assert main([*argv, "--force"]) == 1, argv
        err = capsys.readouterr().err
        assert "is the input" in err and len(err.strip().splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_dev_stdout_on_a_pipe_is_written_into_and_reports_go_to_stderr(npy, tmp_path):
    path, data = npy
    command = [sys.executable, "-m", "srnsz.cli"]
    compressed = subprocess.run([*command, "compress", str(path), "-o", "/dev/stdout", "--eb", "1e-3"],
                                capture_output=True, timeout=300)
    assert compressed.returncode == 0, compressed.stderr
    assert b"ratio" in compressed.stderr
    assert_bound(data, srnsz.decompress(compressed.stdout), srnsz.info(compressed.stdout).error_bound["abs"])
    (tmp_path / "s.srnsz").write_bytes(compressed.stdout)
    back = subprocess.run([*command, "decompress", str(tmp_path / "s.srnsz"), "-o", "/dev/stdout"],
                          capture_output=True, timeout=300)
    assert back.returncode == 0, back.stderr
    assert back.stdout == srnsz.decompress(compressed.stdout).tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "s.srnsz"]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _terminate_when(argv: list[str], ready, timeout: float = 120) -> tuple[int, str, list[int]]:
    """Run the CLI with ``argv`` in a child; send SIGTERM once ``ready(pid)`` holds; (exit code, stderr, the child's
    own children when it was signalled)."""
    proc = subprocess.Popen([sys.executable, "-m", "srnsz.cli", *argv], stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while not ready(proc.pid):
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.stderr.read()}"
        assert time.monotonic() - start < timeout
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    return code, proc.stderr.read(), workers


@pytest.fixture
def large_npy(tmp_path) -> Path:
    x = np.linspace(0, 30, 128)
    rng = np.random.default_rng(0)
    field = np.sin(x)[:, None, None] * np.cos(x)[None, :, None] * np.sin(2 * x)[None, None, :]
    np.save(tmp_path / "big.npy", (field + 0.01 * rng.standard_normal(field.shape)).astype(np.float32))
    return tmp_path / "big.npy"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds worker processes in /proc")
def test_sigterm_during_chunked_compress_stops_workers_and_leaves_nothing(large_npy, tmp_path):
    def ready(pid: int) -> bool:
        return len(_children(pid)) >= 2 and bool(list(tmp_path.glob(".out.sz.*part*")))

    code, err, workers = _terminate_when(["compress", str(large_npy), "-o", str(tmp_path / "out.sz"), "--chunk", "32",
                                          "32", "32", "--threads", "2", "--eb", "1e-5"], ready)
    assert code == 143 and "terminated" in err and "Traceback" not in err
    assert len(workers) >= 2
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds worker processes in /proc")
def test_sigterm_during_chunked_decompress_leaves_nothing(large_npy, tmp_path):
    with open(tmp_path / "in.sz", "wb") as f:
        chunked.compress_chunked(np.load(large_npy), f, eb=1e-6, chunk=(16, 16, 16), tune="off", profile="fast")
    code, err, _ = _terminate_when(["decompress", str(tmp_path / "in.sz"), "-o", str(tmp_path / "out.npy"),
                                    "--threads", "2"], lambda pid: bool(list(tmp_path.glob(".out.npy.*part*"))))
    assert code == 143 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy", "in.sz"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds worker processes in /proc")
def test_sigterm_during_zarr_compress_leaves_nothing(large_npy, tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    data = np.load(large_npy)
    xr.Dataset({f"v{i}": (("z", "y", "x"), data + i) for i in range(4)}).to_netcdf(
        tmp_path / "in.nc", engine="scipy")
    code, err, _ = _terminate_when(["compress", str(tmp_path / "in.nc"), "-o", str(tmp_path / "out.zarr"), "--eb",
                                    "1e-5"], lambda pid: bool(list(tmp_path.glob(".out.zarr.*part*/v0"))))
    assert code == 143 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy", "in.nc"]
