"""Hydra entry point: `srnsz-train experiment=hat_tiny_shared` (or `python -m srnsz.training.train ...`).

Only instantiates the configured pieces and calls `fit`; the pieces live in training/ and networks/.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from srnsz import networks
from srnsz.assets import asset_dir
from srnsz.errors import SrnszError
from srnsz.networks.hat import with_bound_channel, with_context_planes
from srnsz.neural.zoo import load_pretrained
from srnsz.training.export import check_export, export_weights
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
        return built(cfg.network), architecture, kwargs
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


def srnsz_cause(exc: BaseException | None) -> SrnszError | None:
    """The SrnszError that ``exc`` is or wraps (along its chain of causes), if any: Hydra reports an error of a
    configured target as an InstantiationException raised from the error itself."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SrnszError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__
    return None


def built(node: Any, **kwargs: Any) -> Any:
    """``instantiate(node)``, an SrnszError of the target raised as itself rather than wrapped by Hydra."""
    try:
        return instantiate(node, **kwargs)
    except HydraException as exc:
        cause = srnsz_cause(exc)
        if cause is None:
            raise
        raise cause from None


def export_request(cfg: DictConfig) -> tuple[str | None, Path | None, bool]:
    """(weights name or None, folder or None for the shipped pretrained/, replace) as `export` configures them."""
    name = cfg.export.get("name")
    if name is not None and not isinstance(name, bool):
        name = str(name)  # export.name=2024 reaches us as an int
    directory = cfg.export.get("directory")
    return name, Path(str(directory)) if directory else None, bool(cfg.export.get("replace", False))


def run_identity(architecture: str, kwargs: dict, cfg: DictConfig, data: Any) -> dict:
    """What makes a run this run (stored in its checkpoint; a checkpoint of another run is refused): the network,
    its kwargs and init, the data as the manifest records it with a fingerprint of each field's values (a changed
    file at the same path is other data), and the objective."""
    return {"network": architecture, "kwargs": kwargs, "init": cfg.get("init"),
            "data": {**data.describe(), "sha256": data.fingerprint()},
            "objective": OmegaConf.to_container(cfg.objective, resolve=True)}


def run(cfg: DictConfig) -> TrainResult:
    """Train as `cfg` says (from the zoo weights ``init`` when set); export to pretrained/ when `export.name` is
    set. The train numbers and the export name and folder are checked first, before any data is read."""
    loop = built(cfg.train)
    name, directory, replace = export_request(cfg)
    if name is not None:
        check_export(name, directory, replace)
    model, architecture, kwargs = build_network(cfg)
    data = built(cfg.data)
    described = data.describe()
    result = fit(model, data, built(cfg.objective), built(cfg.optim), loop,
                 run_identity(architecture, kwargs, cfg, data))
    if result.log:
        plot_validation(result.out_dir / "val_log.jsonl", result.out_dir / "validation.png",
                        f"{architecture} ({cfg.recipe})")
    if name is not None and result.step == loop.steps and _is_rank_zero():
        path = export_weights(result.model, name, architecture, kwargs, cfg.recipe, described, result.validation,
                              directory, replace)
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
    except (SrnszError, HydraException) as exc:
        cause = srnsz_cause(exc)
        if cause is None:
            raise
        print(f"srnsz-train: error: {cause}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
