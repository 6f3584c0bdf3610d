"""Training pipeline: every config composes and instantiates; a tiny run trains, resumes, exports, reloads;
DDP with the gloo backend on 2 processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hydra")

from conftest import SHARED_DATA, smooth_field  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from srnsz.errors import SrnszError  # noqa: E402
from srnsz.neural.zoo import WeightsError, load_pretrained  # noqa: E402
from srnsz.training.train import run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
NETWORKS = sorted(p.stem for p in (CONFIGS / "network").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))

pytestmark = pytest.mark.training


@pytest.fixture()
def user_field(tmp_path):
    path = tmp_path / "field.npy"
    np.save(path, smooth_field((64, 160), seed=3).astype(np.float32))
    return path


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _quick(field: Path, out: Path, steps: int, export_dir: Path | None = None) -> list[str]:
    overrides = [
        "experiment=quick", f"data.train_files=[{field}]", f"train.out_dir={out}", f"train.steps={steps}",
        "train.val_every=2", "train.ckpt_every=2", "train.batch_size=2", "data.patch_size=16", "data.val_samples=4",
        "train.progress=false", "+network.depths=[1]", "+network.num_heads=[2]", "+network.window_size=4",
    ]
    if export_dir is not None:
        overrides += ["export.name=tiny_test", f"export.directory={export_dir}"]
    return overrides


def test_config_groups_match_the_network_registry():
    from srnsz import networks

    assert set(NETWORKS) == set(networks.list_models())


@pytest.mark.parametrize("network", NETWORKS)
def test_every_network_config_instantiates(network):
    cfg = _compose([f"network={network}"])
    model = instantiate(cfg.network)
    assert isinstance(model, torch.nn.Module)
    assert instantiate(cfg.optim).build(model.parameters())[0].param_groups[0]["lr"] == cfg.optim.lr


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment, user_field):
    overrides = [f"experiment={experiment}"]
    user = experiment in ("quick", "finetune", "pico", "femto")  # recipes for the user's own fields
    cfg = _compose(overrides + ([f"data.train_files=[{user_field}]", "data.patch_size=16"] if user else []))
    assert cfg.recipe == experiment
    if not cfg.init:
        instantiate(cfg.network)
    instantiate(cfg.objective)
    instantiate(cfg.train)
    instantiate(cfg.optim)
    if cfg.data.data_dir != "." and not SHARED_DATA.is_dir():
        pytest.skip("shared data folder absent")
    data = instantiate(cfg.data, data_dir=str(SHARED_DATA) if cfg.data.data_dir != "." else ".")
    batch = data.train_batch(2, np.random.default_rng(0))
    assert all(torch.isfinite(v).all() for v in batch.values())


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data folder absent")
@pytest.mark.parametrize("data", DATA)
def test_data_configs_split_by_file(data):
    cfg = _compose([f"data={data}"] + (["data.train_files=[x.npy]"] if data == "user_field" else []))
    if data == "user_field":
        return
    assert not set(cfg.data.train_files) & set(cfg.data.val_files)


def test_tiny_run_trains_resumes_exports_and_reloads(user_field, tmp_path):
    out, export_dir = tmp_path / "run", tmp_path / "pretrained"
    first = run(_compose(_quick(user_field, out, steps=4)))
    assert first.step == 4 and (out / "checkpoint.pt").exists()
    assert {"psnr", "baseline_psnr"} <= set(first.validation)
    resumed = run(_compose(_quick(user_field, out, steps=6, export_dir=export_dir)))
    assert resumed.step == 6
    log = [json.loads(line) for line in (out / "val_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [2, 4, 6]  # resumed at 4, not from scratch
    assert (out / "validation.png").stat().st_size > 0

    manifest = json.loads((export_dir / "manifest.json").read_text())
    entry = manifest["tiny_test"]
    assert entry["file"] == f"tiny_test-{entry['sha256'][:8]}.pt" and entry["recipe"] == "quick"
    model, loaded = load_pretrained("tiny_test", directory=export_dir)
    x = torch.rand(1, 1, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), resumed.model(x))
    assert loaded.kwargs["depths"] == [1]

    # Rerun: the name is taken (refused before any data is read), and the checkpoint is past a shorter run.
    with pytest.raises(SrnszError, match="already has weights named 'tiny_test'"):
        run(_compose(_quick(user_field, out, steps=6, export_dir=export_dir)))
    with pytest.raises(SrnszError, match="already at step 6, past train.steps=4"):
        run(_compose(_quick(user_field, out, steps=4)))


def test_a_checkpoint_of_another_run_is_refused_not_resumed(user_field, tmp_path):
    # Two fine-tunes in one folder: the second must not resume (or, finished, export) the first one's network.
    out, export_dir = tmp_path / "run", tmp_path / "pretrained"
    run(_compose(_quick(user_field, out, steps=2)))
    other = [o.replace("window_size=4", "window_size=8")
             for o in _quick(user_field, out, steps=2, export_dir=export_dir)]
    with pytest.raises(SrnszError, match="another training run .*kwargs"):
        run(_compose(other))
    assert not export_dir.exists()
    other_field = tmp_path / "other.npy"
    np.save(other_field, np.load(user_field)[::-1].copy())
    with pytest.raises(SrnszError, match="another training run .*data"):
        run(_compose(_quick(other_field, out, steps=4)))
    np.save(user_field, np.load(user_field) * 2)  # other values at the same path
    with pytest.raises(SrnszError, match="another training run .*data"):
        run(_compose(_quick(user_field, out, steps=4)))


def test_default_run_folders_are_per_exported_network():
    assert _compose(["experiment=quick", "data.train_files=[x.npy]"]).train.out_dir == "runs/hat_tiny-quick"
    named = _compose(["experiment=finetune", "data.train_files=[x.npy]", "export.name=my_hat"])
    assert named.train.out_dir == "runs/finetune-my_hat"


def test_zoo_refuses_damaged_missing_and_mismatched_weights(user_field, tmp_path):
    export_dir = tmp_path / "pretrained"
    run(_compose(_quick(user_field, tmp_path / "run", steps=2, export_dir=export_dir)))
    manifest_path = export_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    weights = export_dir / manifest["tiny_test"]["file"]

    with pytest.raises(WeightsError, match="no pretrained weights named 'nope'"):
        load_pretrained("nope", directory=export_dir)
    with pytest.raises(WeightsError, match="use the same weights"):
        load_pretrained("tiny_test", expected_sha256="0" * 64, directory=export_dir)

    manifest["tiny_test"]["kwargs"]["embed_dim"] = 32
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="do not fit network 'hat_tiny'"):
        load_pretrained("tiny_test", directory=export_dir)

    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="damaged or replaced"):
        load_pretrained("tiny_test", directory=export_dir)
    weights.unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_pretrained("tiny_test", directory=export_dir)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_with_gloo(user_field, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "srnsz.training.train", *_quick(user_field, out, steps=4), "train.device=cpu", "train.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # From another folder, as a user would run it: the configs must be found wherever the command starts.
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
    assert len((out / "val_log.jsonl").read_text().splitlines()) == 2  # only rank 0 logs


def test_resume_applies_a_changed_schedule_including_passed_milestones(user_field, tmp_path):
    out = tmp_path / "run"
    run(_compose(_quick(user_field, out, steps=4)))
    run(_compose(_quick(user_field, out, steps=6) + ["optim.milestones=[2]", "optim.gamma=0.25"]))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    lr = _compose(["experiment=quick", "data.train_files=[x.npy]"]).optim.lr
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr * 0.25)


def test_a_manifest_that_is_not_an_object_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(WeightsError, match="not a valid weights manifest"):
        load_pretrained("anything", directory=tmp_path)


def test_finetune_starts_from_zoo_weights(user_field, tmp_path, with_test_weights):
    """init=<weights> trains from those weights (sha256-checked), whose architecture and kwargs win; the finetune
    recipe adds the bound channel and the context planes with zero weights, so it starts predicting exactly as the
    zoo network."""
    from srnsz.training.train import build_network

    overrides = ["experiment=finetune", "network=hat_tiny", "init=test_hat", f"data.train_files=[{user_field}]",
                 f"train.out_dir={tmp_path / 'run'}", "train.steps=2", "train.val_every=2", "train.ckpt_every=2",
                 "train.batch_size=2", "data.patch_size=16", "data.val_samples=4", "train.progress=false",
                 "data.input_bounds=[1e-2]"]
    start, architecture, kwargs = build_network(_compose(overrides))
    zoo, _ = load_pretrained("test_hat")
    assert architecture == "hat_tiny" and kwargs["depths"] == [1] and kwargs["bound_channel"]
    assert kwargs["context_planes"] and start.conv_first.weight.shape[1] == 4
    for (name, a), b in zip(start.state_dict().items(), zoo.state_dict().values()):
        torch.testing.assert_close(a[:, :1] if name == "conv_first.weight" else a, b)
    assert not start.state_dict()["conv_first.weight"][:, 1:].any()
    lr = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(start.eval()(lr, torch.tensor([1e-2, 1e-4]), torch.rand(2, 2, 8, 8)), zoo(lr))
    plain, _, plain_kwargs = build_network(_compose(overrides + ["network.bound_channel=false",
                                                                 "network.context_planes=false"]))
    assert not plain_kwargs["bound_channel"] and plain.conv_first.weight.shape[1] == 1
    result = run(_compose(overrides))
    assert result.step == 2
    with pytest.raises(Exception, match="network=hat_tiny"):
        build_network(_compose([o for o in overrides if o != "network=hat_tiny"] + ["network=ae_2d"]))


def test_the_finetune_recipe_starts_from_the_shipped_fast_network():
    from srnsz.training.train import build_network

    start, architecture, kwargs = build_network(_compose(["experiment=finetune", "data.train_files=[x.npy]"]))
    zoo, entry = load_pretrained("hat_nano_series")
    assert architecture == entry.architecture == "hat_nano" and kwargs["bound_channel"] and kwargs["context_planes"]
    for (name, a), b in zip(start.state_dict().items(), zoo.state_dict().values()):
        assert torch.equal(a[:, :2] if name == "conv_first.weight" else a, b)
    assert not start.state_dict()["conv_first.weight"][:, 2:].any()


def test_bound_inputs_are_srnsz_reconstructions_on_the_coarse_lattice(tmp_path):
    """input_bounds: lr is srnsz's reconstruction at one of the bounds (within it, not the original), on even
    points of even planes of a 3D field, and 'bound' is that bound over lr's span."""
    from srnsz.training.data import SuperResolutionPatches, reconstructed

    field = (smooth_field((40, 24, 20), seed=3) + 0.05 * np.random.default_rng(1).standard_normal((40, 24, 20)))
    np.save(tmp_path / "f.npy", field.astype(np.float32))
    data = SuperResolutionPatches([str(tmp_path / "f.npy")], patch_size=16, input_bounds=[1e-2], holdout=0.25,
                                  val_samples=4)
    plane = data.train_planes[0]
    span = float(field.astype(np.float32)[:30].max() - field.astype(np.float32)[:30].min())
    assert plane.stride == 2 and plane.eb == pytest.approx(1e-2 * span, rel=1e-6)
    assert 0 < np.abs(plane.given - plane.original).max() <= plane.eb
    assert len(data.train_planes) == 15 + 12 + 10  # even planes of the 30x24x20 training part along each axis
    batch = data.train_batch(32, np.random.default_rng(0))
    lr, hr, bound = batch["lr"], batch["hr"], batch["bound"]
    assert lr.shape == (32, 1, 8, 8) and bound.shape == (32,)
    # lr and hr share one scaling (lr's span): their difference on the lattice is the error over that span
    assert float((lr - hr[..., ::2, ::2]).abs().amax(dim=(1, 2, 3)).sub(bound).max()) <= 1e-5
    assert float(bound.min()) > 0
    recon, eb = reconstructed(field, 1e-2)
    assert eb == pytest.approx(1e-2 * np.ptp(field), rel=1e-6) and np.abs(recon - field).max() <= eb
    with pytest.raises(ValueError, match="input_bounds"):
        SuperResolutionPatches([str(tmp_path / "f.npy")], patch_size=16, input_bounds=[2.0])


def test_lattice_and_sign_flips_keep_lr_on_the_coarse_lattice(tmp_path):
    """lattice_flips: training patches come in all four mirror orientations, each with lr still srnsz's
    reconstruction at the window's even points (within the bound of hr there, which a flip off the lattice would
    break on a rough field); the validation set and, without the option, the training draws are unchanged. sign_flips
    negates some patches."""
    from srnsz.training.data import SuperResolutionPatches

    rows, cols = np.meshgrid(np.arange(60), np.arange(52), indexing="ij")
    rough = np.random.default_rng(4).standard_normal((60, 52))
    np.save(tmp_path / "f.npy", (0.2 * rows + 0.3 * cols + rough).astype(np.float32))
    options = dict(patch_size=16, input_bounds=[1e-3], holdout=0.3, val_samples=8)
    flipped = SuperResolutionPatches([str(tmp_path / "f.npy")], lattice_flips=True, **options)
    plain = SuperResolutionPatches([str(tmp_path / "f.npy")], **options)
    # the reconstruction made wrong off the plane's lattice: a patch whose lr came from there would show it
    off_lattice = np.ones(flipped.train_planes[0].given.shape, dtype=bool)
    off_lattice[::2, ::2] = False
    flipped.train_planes = [dataclasses.replace(p, given=p.given + 50.0 * off_lattice) for p in flipped.train_planes]

    def orientations(data: SuperResolutionPatches) -> set[tuple[int, int]]:
        """(rows, columns) rising (1) or falling (-1) over 64 training patches, each checked to have lr within the
        bound of hr's even points: the ramps tell the orientation (transposes swap the two ramps)."""
        batch = data.train_batch(64, np.random.default_rng(0))
        lr, hr, bound = batch["lr"][:, 0].double(), batch["hr"][:, 0].double(), batch["bound"].double()
        assert float(((lr - hr[:, ::2, ::2]).abs().amax(dim=(1, 2)) - bound).max()) <= 1e-5
        down = torch.sign(hr[:, -1, :].mean(1) - hr[:, 0, :].mean(1))
        right = torch.sign(hr[:, :, -1].mean(1) - hr[:, :, 0].mean(1))
        return {(int(a), int(b)) for a, b in zip(down, right)}

    assert orientations(flipped) == {(1, 1), (1, -1), (-1, 1), (-1, -1)}
    assert all(torch.equal(flipped.validation_set()[k], plain.validation_set()[k]) for k in ("lr", "hr"))
    assert orientations(plain) == {(1, 1)}
    assert flipped.describe()["lattice_flips"] and "lattice_flips" not in plain.describe()
    # sign_flips alone: a patch's ramps both fall when negated, never one of them
    negated = SuperResolutionPatches([str(tmp_path / "f.npy")], sign_flips=True, **options)
    assert orientations(negated) == {(1, 1), (-1, -1)}
    assert negated.describe()["sign_flips"] and "sign_flips" not in flipped.describe()


def test_context_planes_are_the_coarse_planes_beside_each_patch(tmp_path):
    """context_planes: on a linear 3D field each context plane is the patch's lr shifted by two points along the
    plane's normal (a constant offset over the patch, opposite for before / after, zero at an edge), whatever the
    flips; in 2D the context is lr itself."""
    from srnsz.training.data import SuperResolutionPatches

    z, y, x = np.meshgrid(np.arange(24), np.arange(20), np.arange(22), indexing="ij")
    np.save(tmp_path / "linear.npy", (3.0 * z + 5.0 * y + 7.0 * x).astype(np.float32))
    data = SuperResolutionPatches([str(tmp_path / "linear.npy")], patch_size=8, holdout=0.2, val_samples=4,
                                  context_planes=True)
    batch = data.train_batch(64, np.random.default_rng(0))
    lr, context = batch["lr"][:, 0].double(), batch["context"].double()
    before, after = context[:, 0] - lr, context[:, 1] - lr
    for offset in (before, after):
        assert float((offset - offset[:, :1, :1]).abs().max()) < 1e-5  # constant over each patch
    edge = (before[:, 0, 0].abs() < 1e-6) | (after[:, 0, 0].abs() < 1e-6)
    assert bool(torch.allclose(before[~edge, 0, 0], -after[~edge, 0, 0], atol=1e-5)) and bool((~edge).any())
    np.save(tmp_path / "plane.npy", smooth_field((40, 40), seed=1).astype(np.float32))
    flat = SuperResolutionPatches([str(tmp_path / "plane.npy")], patch_size=8, holdout=0.25, val_samples=4,
                                  context_planes=True).train_batch(8, np.random.default_rng(1))
    assert torch.equal(flat["context"], flat["lr"].expand(-1, 2, -1, -1))
    assert "context" not in SuperResolutionPatches([str(tmp_path / "plane.npy")], patch_size=8, holdout=0.25,
                                                   val_samples=4).train_batch(2, np.random.default_rng(1))


def test_training_samples_never_hold_missing_values(tmp_path):
    """The compressor's missing-value rule applies to training data: -999 land (a detected fill) and NaN."""
    from srnsz.training.data import SuperResolutionPatches

    field = smooth_field((96, 96), seed=5) * 5 + 20
    field[:40, :30] = -999.0
    field[60, 60] = np.nan
    np.save(tmp_path / "land.npy", field.astype(np.float32))
    data = SuperResolutionPatches([str(tmp_path / "land.npy")], patch_size=16, holdout=0.3, val_samples=8)
    batch = data.train_batch(64, np.random.default_rng(0))
    assert all(torch.isfinite(v).all() for v in batch.values())
    # hr is scaled by its lr patch's range: a -999 in it would land hundreds of ranges below 0
    assert float(batch["hr"].min()) > -1.0 and float(batch["hr"].max()) < 2.0


def test_the_manifest_records_each_field_with_its_folder(tmp_path):
    from srnsz.training.data import SuperResolutionPatches

    (tmp_path / "series").mkdir()
    field = smooth_field((40, 40), seed=2).astype(np.float32)
    np.save(tmp_path / "series" / "a.npy", field)
    np.save(tmp_path / "b.npy", field)
    data = SuperResolutionPatches(["series/a.npy"], val_files=["b.npy"], data_dir=str(tmp_path), patch_size=16,
                                  val_samples=2)
    assert data.describe()["train"] == ["series/a.npy"] and data.describe()["val"] == ["b.npy"]


def test_quantization_aware_training_runs_through_the_fixed_point_forward(user_field, tmp_path):
    # objective.fixed_point=true: the loss comes from the compressor's fixed-point pass, whose rounding passes the
    # gradient straight through to every kind of parameter; validation reports the network both as trained and as
    # the compressor runs it.
    from srnsz.training.objectives import SuperResolutionL1

    cfg = _compose(_quick(user_field, tmp_path / "x", steps=1) + ["+network.bound_channel=true"])
    torch.manual_seed(0)
    model = instantiate(cfg.network)
    for p in model.parameters():  # trained networks are nowhere zero; the zero-started last conv would stop gradients
        torch.nn.init.normal_(p, 0.0, 0.05)
    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.uniform(0, 1, (2, 1, 16, 16)).astype(np.float32))
    batch = {"lr": hr[..., ::2, ::2].contiguous(), "hr": hr, "bound": torch.tensor([1e-2, 1e-3])}
    SuperResolutionL1(fixed_point=True).loss(model, batch).backward()
    for name in ("conv_first.weight", "groups.0.blocks.0.attn.bias_table", "groups.0.blocks.0.norm1.weight",
                 "groups.0.blocks.0.mlp.fc1.bias", "upsample.4.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().max() > 0, name
    result = run(_compose(_quick(user_field, tmp_path / "run", steps=4) + ["objective.fixed_point=true"]))
    assert {"psnr", "psnr_fixed_point", "baseline_psnr"} <= set(result.validation)
    assert abs(result.validation["psnr"] - result.validation["psnr_fixed_point"]) < 0.5
