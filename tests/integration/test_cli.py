"""The command line, run as a user would: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_bound, run, smooth_field

import srnsz


@pytest.fixture
def npy(tmp_path):
    data = smooth_field((16, 24, 30))
    path = tmp_path / "field.npy"
    np.save(path, data)
    return path, data


def test_compress_decompress_npy(npy, tmp_path):
    path, data = npy
    out, back = tmp_path / "f.srnsz", tmp_path / "back.npy"
    run("compress", str(path), "-o", str(out), "--eb", "1e-3")
    run("decompress", str(out), "-o", str(back))
    eb = srnsz.info(out.read_bytes()).error_bound["abs"]
    assert_bound(data, np.load(back), eb)
    assert "ratio" in run("info", str(out)).stdout


def test_fast_profile(npy, tmp_path):
    path, data = npy
    out, back = tmp_path / "f.srnsz", tmp_path / "back.npy"
    run("compress", str(path), "-o", str(out), "--eb", "1e-3", "--profile", "fast")
    run("decompress", str(out), "-o", str(back))
    assert_bound(data, np.load(back), srnsz.info(out.read_bytes()).error_bound["abs"])
    assert srnsz.info(out.read_bytes()).format_version == "1.14"  # its coder needs 1.8; every new stream 1.14
    assert "invalid choice" in run("compress", str(path), "-o", str(tmp_path / "g"), "--profile", "x", ok=False).stderr
    assert not (tmp_path / "g").exists()


def test_a_closed_stdout_ends_quietly(npy, tmp_path):
    """`srnsz info x | head -1`: when the reader has gone, no error message and no traceback, SIGPIPE's status."""
    import os

    path, _ = npy
    out = tmp_path / "f.srnsz"
    run("compress", str(path), "-o", str(out), "--eb", "1e-3")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        proc = subprocess.run([sys.executable, "-m", "srnsz.cli", "info", str(out)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""


def test_raw_input_and_output(tmp_path):
    data = smooth_field((9, 10, 11), np.float64)
    raw = tmp_path / "f.bin"
    data.tofile(raw)
    out, back = tmp_path / "f.srnsz", tmp_path / "back.bin"
    run("compress", str(raw), "--dtype", "f64", "--shape", "9", "10", "11", "-o", str(out), "--mode", "abs",
        "--eb", "0.01")
    run("decompress", str(out), "-o", str(back))
    assert_bound(data, np.fromfile(back, dtype="<f8").reshape(data.shape), 0.01)


def test_raw_size_mismatch_is_clear(tmp_path):
    raw = tmp_path / "f.bin"
    np.zeros(100, np.float32).tofile(raw)
    proc = run("compress", str(raw), "--dtype", "f32", "--shape", "10", "11", "-o", str(tmp_path / "x"), ok=False)
    assert "needs 440" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_without_force(npy, tmp_path):
    path, _ = npy
    out = tmp_path / "f.srnsz"
    out.write_bytes(b"precious")
    proc = run("compress", str(path), "-o", str(out), ok=False)
    assert "--force" in proc.stderr and out.read_bytes() == b"precious"
    run("compress", str(path), "-o", str(out), "--force")
    assert out.read_bytes() != b"precious"


def test_corrupted_stream_leaves_no_output(npy, tmp_path):
    path, _ = npy
    out = tmp_path / "f.srnsz"
    run("compress", str(path), "-o", str(out))
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    out.write_bytes(bytes(blob))
    proc = run("decompress", str(out), "-o", str(tmp_path / "back.npy"), ok=False)
    assert "corrupted" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.srnsz", "field.npy"]


@pytest.mark.parametrize("args,match", [
    (["compress", "missing.npy", "-o", "x"], "does not exist"),
    (["compress", "--example", "-o", "x", "--eb", "-1"], ">= 0"),
    (["decompress", "missing.srnsz", "-o", "x.npy"], "does not exist"),
    (["compress", "--example", "-o", "x", "--rel", "0.01"], "give --eb 0.01"),  # was silently the default 1e-3
])
def test_clear_errors(args, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert match in run(*args, ok=False).stderr
    assert not (tmp_path / "x").exists()


def test_not_npy_without_raw_options(tmp_path):
    f = tmp_path / "f.dat"
    f.write_bytes(b"1234")
    assert "--dtype and --shape" in run("compress", str(f), "-o", str(tmp_path / "o"), ok=False).stderr


def test_eval_on_example():
    out = run("eval", "--example", "--eb", "1e-2").stdout
    assert "bound held         : True" in out and "PSNR" in out and "MB/s" in out


def test_bad_inputs_and_flags_get_one_line_errors_and_leave_nothing(npy, tmp_path, monkeypatch):
    path, _ = npy
    monkeypatch.chdir(tmp_path)
    np.save("ints.npy", np.arange(120, dtype=np.int32).reshape(10, 12))
    (tmp_path / "text.npy").write_text("temperature,pressure\n1,2\n")
    (tmp_path / "folder").mkdir()
    cases = [
        (["bench", "ints.npy", "--out", "b1", "--codecs", "srnsz-interp", "--no-plots"], "float32 or float64"),
        (["bench", "missing.npy", "--out", "b2", "--no-plots"], "does not exist"),
        (["compress", "folder", "-o", "x"], "is a directory"),
        (["info", "folder"], "is a directory"),
        (["compress", "text.npy", "-o", "x"], "not a .npy file"),
        (["compress", str(path), "-o", "x", "--eb", "-1e-3"], ">= 0, got -0.001"),
        (["compress", str(path), "-o", "x", "--model", "hat_pico_series"], "takes no option 'model'"),
        (["compress", str(path), "-o", "x", "--predictor", "lorenzo", "--kind", "cubic"], "takes no option 'kind'"),
        (["compress", str(path), "-o", "x", "--predictor", "hat", "--hat-levels", "0"], "at least 1"),
        (["compress", str(path), "-o", "x", "--predictor", "hat", "--hat-levels", "99"], "has 5 levels"),
    ]
    for args, match in cases:
        err = run(*args, ok=False).stderr
        assert match in err and len(err.strip().splitlines()) == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field.npy", "folder", "ints.npy", "text.npy"]
    assert "pickled" not in run("compress", "text.npy", "-o", "x", ok=False).stderr  # numpy's hint is not ours


def test_an_unreadable_weights_manifest_is_blamed_not_a_good_stream(tmp_path, monkeypatch, capsys,
                                                                     with_test_weights):
    """A folder on SRNSZ_WEIGHTS whose manifest.json is not UTF-8 JSON: compress and decompress of a good HAT stream
    both say the manifest is bad (one line, nothing written), never that the stream is corrupted."""
    import srnsz.api as api_module
    from srnsz.cli import main
    from srnsz.predictors.hat import HatPolicy

    inf = float("inf")
    keep = HatPolicy(give_up_l1_share=inf, give_up_beyond_share=inf, network_stream_bytes=-inf,
                     give_up_one_view_share=inf)
    monkeypatch.setattr(api_module, "smallest", lambda streams: streams[0])  # keep the HAT stream
    data = smooth_field((32, 32))
    stream = srnsz.compress(data, 1e-3, "abs", predictor="hat", model="test_hat", policy=keep)
    assert srnsz.info(stream).predictor == "hat"
    (tmp_path / "h.srnsz").write_bytes(stream)
    np.save(tmp_path / "f.npy", data)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_bytes(b"\xff\xfe{}")
    monkeypatch.setenv("SRNSZ_WEIGHTS", f"{tmp_path / 'bad'}:{with_test_weights}")
    for args in (["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / "x"), "--predictor", "hat", "--model",
                  "test_hat"], ["decompress", str(tmp_path / "h.srnsz"), "-o", str(tmp_path / "x.npy")]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "not a valid weights manifest" in err and "corrupted" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "f.npy", "h.srnsz"]


def test_a_npy_header_asking_for_more_than_the_file_holds_is_refused_before_allocating(tmp_path, monkeypatch,
                                                                                      capsys):
    """A truncated .npy, or one whose header claims a huge shape: one line naming the file, nothing allocated or
    written, with and without --chunk (memory-mapped); an allocation that fails anyway is a clear error too."""
    from srnsz.cli import main

    monkeypatch.chdir(tmp_path)
    np.save("f.npy", smooth_field((16, 16, 16)))
    blob = (tmp_path / "f.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(blob[:1000])
    end = blob.index(b"\n")  # the header is padded with spaces: the longer shape fits in the same length
    huge = blob[:end].replace(b"(16, 16, 16)", b"(1000000, 1000000)")[:end] + blob[end:end + 41]
    (tmp_path / "huge.npy").write_bytes(huge)
    for name in ("huge.npy", "cut.npy"):
        for extra in ([], ["--chunk", "8", "8", "8"]):
            assert main(["compress", name, "-o", "x", *extra]) == 1
            err = capsys.readouterr().err
            assert f"{name}: its header says shape" in err and "truncated or damaged" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.npy", "f.npy", "huge.npy"]

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "load", no_memory)
    assert main(["compress", "f.npy", "-o", "x"]) == 1
    assert "too large to load into memory" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("text,match", [
    ("name: hat\nmodel: 5\n", "model must be a weights name, got 5"),
    ("name: interp\nregion: 5\n", "'region' is not an option of the interp predictor"),
    ("name: interp\nmetadata: 5\n", "'metadata' is not an option"),
    ("name: interp\nprogress: 5\n", "'progress' is not an option"),
    ("name: lorenzo\nthreads: 2\n", "'threads' is not an option of the lorenzo predictor"),
    ("name: interp\nthreads: abc\n", "threads must be a whole number"),
    ("name: interp\nparts: 5\nfill_value: 1\n", "'fill_value', 'parts' are not options"),
], ids=["model-number", "region", "metadata", "progress", "threads-lorenzo", "threads-text", "two"])
def test_predictor_config_keys_that_are_not_options_of_the_predictor_are_refused(npy, tmp_path, capsys, text,
                                                                               match):
    from srnsz.cli import main

    path, _ = npy
    config = tmp_path / "p.yaml"
    config.write_text(text)
    assert main(["compress", str(path), "-o", str(tmp_path / "x"), "--predictor-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert match in err and "p.yaml" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_bench_leaves_the_files_of_a_folder_alone_without_force(npy, tmp_path, capsys):
    from srnsz.cli import main

    path, _ = npy
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.md").write_text("my notes")
    args = ["bench", str(path), "--out", str(out), "--codecs", "srnsz-lorenzo", "--no-plots", "--eb", "1e-2"]
    assert main(args) == 1
    assert "results.md" in capsys.readouterr().err and (out / "results.md").read_text() == "my notes"
    assert main([*args, "--force"]) == 0 and (out / "results.md").read_text() != "my notes"
