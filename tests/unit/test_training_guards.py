"""Guards of the training pipeline, called directly (no training run): export names and folders, the manifest under
concurrent exports, the train numbers, a checkpoint past train.steps, errors of configured targets as one line,
field dtypes, and the fingerprint that tells a file rewritten at the same path from the data a checkpoint saw."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import multiprocessing.synchronize
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hydra")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.errors import InstantiationException  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from srnsz.errors import InvalidInputError, SrnszError  # noqa: E402
from srnsz.neural.zoo import MANIFEST, read_manifest, sha256_of  # noqa: E402
from srnsz.training import export as export_module  # noqa: E402
from srnsz.training.data import FieldSpec, SuperResolutionPatches, load_field  # noqa: E402
from srnsz.training.export import ExportError, check_export, export_weights  # noqa: E402
from srnsz.training.loop import OptimizerRecipe, TrainLoop, _check_same_run, fit  # noqa: E402
from srnsz.training.train import built, run, run_identity  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED = "hat_pico_series_flips_long"  # the default network's weights


def _export(directory: Path | None, name: str, seed: int = 0, replace: bool = False) -> Path:
    torch.manual_seed(seed)
    return export_weights(torch.nn.Linear(2, 2), name, "hat_tiny", {}, "test", {}, {}, directory, replace)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


# ---- export names and folders

def test_a_name_already_in_the_folder_is_refused_unless_replace(tmp_path):
    first = _export(tmp_path, "mine", seed=0)
    before = _files(tmp_path)
    with pytest.raises(ExportError, match="already has weights named 'mine'.*export.replace=true"):
        _export(tmp_path, "mine", seed=1)
    assert _files(tmp_path) == before  # nothing written, not even the weights file
    second = _export(tmp_path, "mine", seed=1, replace=True)
    assert second != first and read_manifest(tmp_path)["mine"].file == second.name


def test_the_shipped_folder_keeps_its_entries_unless_replace(tmp_path, monkeypatch):
    # The package's pretrained/ (export.directory unset), here a stand-in so the real one is never written.
    shipped = tmp_path / "pretrained"
    monkeypatch.setattr(export_module, "PRETRAINED_DIR", shipped)
    _export(None, "default_net", seed=0)
    before = _files(shipped)
    with pytest.raises(ExportError, match="already has weights named 'default_net'"):
        _export(None, "default_net", seed=1)
    assert _files(shipped) == before
    replaced = _export(None, "default_net", seed=1, replace=True)
    assert read_manifest(shipped)["default_net"].file == replaced.name


@pytest.mark.parametrize("replace", [False, True])
def test_a_shipped_name_is_refused_in_another_folder(tmp_path, replace):
    assert SHIPPED in read_manifest()
    target = tmp_path / "mine"
    with pytest.raises(ExportError, match=f"'{SHIPPED}' is the name of shipped weights"):
        _export(target, SHIPPED, replace=replace)
    assert not target.exists()


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "../escape", ".hidden", "-rf", "a b", "x" * 101, "a\nb",
                                  None, 7])
def test_names_that_are_not_plain_tokens_are_refused(tmp_path, name):
    target = tmp_path / "out"
    with pytest.raises(ExportError, match="export.name must be a plain name"):
        export_weights(torch.nn.Linear(2, 2), name, "hat_tiny", {}, "test", {}, {}, target)
    assert not target.exists() and not (tmp_path / "a").exists()


def test_an_unwritable_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="not a writable folder"):
        check_export("mine", blocker / "weights")


@pytest.mark.parametrize("text", ["[]", "{bad json", '{"x": 1}'], ids=str)
def test_an_invalid_manifest_is_refused_before_anything_is_written(tmp_path, text):
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(SrnszError, match="not a valid weights manifest"):
        check_export("mine", tmp_path)  # what a run checks before training
    with pytest.raises(SrnszError, match="not a valid weights manifest"):
        _export(tmp_path, "mine")
    assert _files(tmp_path) == {MANIFEST: text.encode()}


# ---- concurrent exports

def _export_many(directory: str, tag: str, count: int) -> None:
    for i in range(count):
        _export(Path(directory), f"{tag}{i}", seed=i)


def test_concurrent_exports_keep_every_entry(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_export_many, args=(str(tmp_path), tag, 60), daemon=True) for tag in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    entries = read_manifest(tmp_path)
    assert sorted(entries) == sorted(f"{tag}{i}" for tag in "ab" for i in range(60))
    for entry in entries.values():
        assert sha256_of(tmp_path / entry.file) == entry.sha256
    # no temporaries, no lock file left behind
    assert {p.name for p in tmp_path.iterdir()} == {MANIFEST} | {e.file for e in entries.values()}


def _export_when(go: multiprocessing.synchronize.Event, directory: str) -> None:
    go.wait(60)
    _export_many(directory, "late", 1)


def test_an_export_waits_for_the_manifest_lock(tmp_path):
    # Forked before the lock is taken: a child forked while it is held would share the parent's lock.
    context = multiprocessing.get_context("fork")
    go = context.Event()
    worker = context.Process(target=_export_when, args=(go, str(tmp_path)), daemon=True)
    worker.start()
    try:
        with export_module._manifest_lock(tmp_path):
            go.set()
            time.sleep(1.0)
            assert worker.is_alive() and not (tmp_path / MANIFEST).exists()
        worker.join(60)
        assert worker.exitcode == 0 and list(read_manifest(tmp_path)) == ["late0"]
    finally:
        if worker.is_alive():
            worker.kill()


# ---- the train numbers and a checkpoint past train.steps

@pytest.mark.parametrize("change", [{"steps": 0}, {"steps": -5}, {"steps": 1.5}, {"steps": True}, {"val_every": 0},
                                    {"ckpt_every": 0}, {"batch_size": 0}], ids=str)
def test_train_numbers_below_one_are_refused(change):
    option = next(iter(change))
    with pytest.raises(SrnszError, match=f"train.{option} must be a whole number of at least 1"):
        TrainLoop(**change)


@pytest.mark.parametrize(("overrides", "match"), [
    (["train.val_every=0"], "train.val_every must be"),
    (["train.steps=0"], "train.steps must be"),
    (["train.steps=-5"], "train.steps must be"),
    (["train.ckpt_every=0"], "train.ckpt_every must be"),
    (["export.name=a/b"], "export.name must be a plain name"),
    (["export.name=''"], "export.name must be a plain name"),
    ([f"export.name={SHIPPED}", "export.directory=DIR"], "is the name of shipped weights"),
    ([], "missing.npy' does not exist"),  # the data config's error, as itself rather than Hydra's wrapper
], ids=str)
def test_a_run_checks_its_config_before_reading_data(tmp_path, overrides, match):
    out = tmp_path / "run"
    cfg = _compose(["experiment=quick", f"data.train_files=[{tmp_path / 'missing.npy'}]", f"train.out_dir={out}"]
                   + [o.replace("DIR", str(tmp_path / "w")) for o in overrides])
    with pytest.raises(SrnszError, match=match):
        run(cfg)
    assert not out.exists() and not (tmp_path / "w").exists()


class _Points:
    """Random 2-vectors: a data set for the loop's mechanics."""

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return {"x": torch.from_numpy(rng.standard_normal((batch_size, 2)).astype(np.float32))}

    def validation_set(self) -> dict[str, torch.Tensor]:
        return {"x": torch.ones(4, 2)}


class _Shrink:
    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["x"]).pow(2).mean()

    @torch.inference_mode()
    def validate(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        return {"psnr": float(model(batch["x"]).abs().mean()), "baseline_psnr": 0.0}


def _fit(loop: TrainLoop) -> object:
    torch.manual_seed(0)
    return fit(torch.nn.Linear(2, 2), _Points(), _Shrink(), OptimizerRecipe(), loop)


def test_a_checkpoint_past_train_steps_is_refused_and_one_at_it_is_returned(tmp_path):
    loop = TrainLoop(steps=4, out_dir=str(tmp_path), val_every=2, ckpt_every=2, device="cpu", progress=False)
    first = _fit(loop)
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(SrnszError, match="already at step 4, past train.steps=2: give train.steps=4"):
        _fit(dataclasses.replace(loop, steps=2))
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint
    again = _fit(loop)  # finished: returned as it is, for run() to export
    assert again.step == 4 and again.validation == first.validation
    for a, b in zip(again.model.state_dict().values(), first.model.state_dict().values()):
        torch.testing.assert_close(a, b)


# ---- errors of configured targets, field dtypes

def test_an_srnsz_error_of_a_configured_target_is_raised_as_itself():
    node = OmegaConf.create({"_target_": "srnsz.training.loop.TrainLoop", "steps": 0})
    with pytest.raises(InstantiationException):
        instantiate(node)
    with pytest.raises(SrnszError, match="train.steps must be") as caught:
        built(node)
    assert not isinstance(caught.value, InstantiationException)
    with pytest.raises(InstantiationException):  # other errors keep Hydra's report
        built(OmegaConf.create({"_target_": "builtins.int", "_args_": ["x"]}))


def test_srnsz_train_reports_a_data_error_as_one_line(tmp_path):
    cmd = [sys.executable, "-m", "srnsz.training.train", "experiment=quick",
           f"data.train_files=[{tmp_path / 'missing.npy'}]", f"train.out_dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"srnsz-train: error: input file '{tmp_path / 'missing.npy'}' does not exist"], proc.stderr


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "float16", "bool"])
def test_fields_that_are_not_float32_or_float64_are_refused(tmp_path, dtype):
    path = tmp_path / "field.npy"
    np.save(path, (np.arange(64 * 64).reshape(64, 64) % 7).astype(dtype))
    with pytest.raises(InvalidInputError, match=f"field.npy: training takes float32 or float64 fields.*{dtype}"):
        load_field(FieldSpec(str(path)))


# ---- the data fingerprint in the run identity

def test_a_field_rewritten_at_the_same_path_is_other_data(tmp_path):
    path = tmp_path / "field.npy"
    field = np.random.default_rng(0).standard_normal((64, 96)).astype(np.float32)
    cfg = _compose(["experiment=quick", f"data.train_files=[{path}]"])

    def identity() -> dict:
        data = SuperResolutionPatches([str(path)], patch_size=16, val_samples=4)
        return run_identity("hat_tiny", {}, cfg, data)

    np.save(path, field)
    saved = identity()
    np.save(path, field)  # rewritten with the same values: the same run
    assert identity() == saved
    changed = field.copy()
    changed[32, 48] += 1  # one value in the middle: same size, header, first and last bytes
    np.save(path, changed)
    other = identity()
    assert other["data"]["train"] == saved["data"]["train"] and other != saved
    with pytest.raises(SrnszError, match="another training run .*data"):
        _check_same_run(tmp_path / "checkpoint.pt", json.dumps(saved, sort_keys=True),
                        json.dumps(other, sort_keys=True))
