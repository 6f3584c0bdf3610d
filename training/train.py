"""Hydra entry point: `srnsz-train experiment=hat_tiny_shared` (or `python -m srnsz.training.train ...`).

Only instantiates the configured pieces and calls `fit`; the pieces live in training/ and networks/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from srnsz import networks
from srnsz.assets import asset_dir
from srnsz.errors import SrnszError
from srnsz.networks.hat import with_bound_channel, with_context_planes
from srnsz.neural.zoo import load_pretrained
from srnsz.training.export import export_weights
from srnsz.training.loop import TrainResult, fit
from srnsz.training.plot import plot_validation


def network_kwargs(cfg: DictConfig) -> tuple[str, dict]:
    """(architecture name, full kwargs) of the configured network."""
    network = OmegaConf.to_container(cfg.network, resolve=True)
    overrides = {k: v for k, v in network.items() if k not in ("_target_", "name")}
    return cfg.network.name, networks.model_kwargs(cfg.network.name, **overrides)


def build_network(cfg: DictConfig) -> tuple[nn.Module, str, dict]:
    """(network, architecture name, full kwargs): the configured one, or with ``init`` set the zoo weights of that
    name (verified by sha256), to fine-tune; their architecture and kwargs then win over the network config, whose
    name must match, except that ``network.bound_channel=true`` / ``network.context_planes=true`` may add the bound /
    context-plane inputs to a HAT that lacks them (zero weights there: training starts from exactly the zoo
    network)."""
    if not cfg.get("init"):
        architecture, kwargs = network_kwargs(cfg)
        return instantiate(cfg.network), architecture, kwargs
    model, entry = load_pretrained(str(cfg.init))
    if entry.architecture != cfg.network.name:
        raise SrnszError(f"init={cfg.init} holds a {entry.architecture!r} network but network={cfg.network.name}: "
                         f"add network={entry.architecture}")
    kwargs = networks.model_kwargs(entry.architecture, **entry.kwargs)
    if cfg.network.get("bound_channel") and not kwargs.get("bound_channel"):
        model, kwargs = with_bound_channel(model, kwargs), {**kwargs, "bound_channel": True}
    if cfg.network.get("context_planes") and not kwargs.get("context_planes"):
        model, kwargs = with_context_planes(model, kwargs), {**kwargs, "context_planes": True}
    return model.train(), entry.architecture, kwargs


def run(cfg: DictConfig) -> TrainResult:
    """Train as `cfg` says (from the zoo weights ``init`` when set); export to pretrained/ when `export.name` is
    set."""
    model, architecture, kwargs = build_network(cfg)
    data = instantiate(cfg.data)
    described = data.describe()
    identity = {"network": architecture, "kwargs": kwargs, "init": cfg.get("init"), "data": described,
                "objective": OmegaConf.to_container(cfg.objective, resolve=True)}
    result = fit(model, data, instantiate(cfg.objective), instantiate(cfg.optim), instantiate(cfg.train), identity)
    if result.log:
        plot_validation(result.out_dir / "val_log.jsonl", result.out_dir / "validation.png",
                        f"{architecture} ({cfg.recipe})")
    if cfg.export.name and result.step == cfg.train.steps and _is_rank_zero():
        path = export_weights(result.model, cfg.export.name, architecture, kwargs, cfg.recipe, described,
                              result.validation, Path(cfg.export.directory) if cfg.export.directory else None)
        print(f"exported {path}")
    if result.validation:
        v = result.validation
        print(f"step {result.step}: held-out prediction PSNR {v['psnr']:.2f} dB (baseline {v['baseline_psnr']:.2f} dB)")
    return result


def _is_rank_zero() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


CONFIGS = str(asset_dir("configs"))  # absolute: works from any cwd, from a checkout and from a wheel


def run_folder_name(recipe: str, export_name: str | None, network: str) -> str:
    """train.out_dir's default name: one folder per exported network (two fine-tunes with different export names
    never share a checkpoint), else per network and recipe."""
    return f"{recipe}-{export_name}" if export_name else f"{network}-{recipe}"


OmegaConf.register_new_resolver("run_folder", run_folder_name, replace=True)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except SrnszError as exc:
        print(f"srnsz-train: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
