"""The training loop: Adam + step schedule, EMA weights, gradient clipping, checkpoints/resume, validation log.

Runs on one process, or on several under `torchrun` (DDP; gloo on CPU, nccl on CUDA). Each rank draws its own
random samples; rank 0 validates, logs and checkpoints.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from srnsz.errors import SrnszError
from srnsz.neural.runtime import resolve_device


class TrainData(Protocol):
    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]: ...
    def validation_set(self) -> dict[str, torch.Tensor]: ...


class Objective(Protocol):
    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...
    def validate(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...


@dataclass
class OptimizerRecipe:
    """Adam with a step learning-rate schedule (multiplied by `gamma` at each milestone step)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5

    def build(self, params: Any) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = torch.optim.Adam(params, lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
        return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, list(self.milestones), self.gamma)


@dataclass
class TrainLoop:
    """How long and how to train; `out_dir` holds checkpoint.pt, val_log.jsonl and validation.png."""

    steps: int = 1000
    batch_size: int = 16
    out_dir: str = "runs/default"
    val_every: int = 200
    ckpt_every: int = 200
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        # Checked when the config is instantiated (run() does it before reading data): later, 0 divides by zero in
        # the loop and a negative step count trains nothing without a word.
        for option in ("steps", "batch_size", "val_every", "ckpt_every"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SrnszError(f"train.{option} must be a whole number of at least 1, got {value!r}")


@dataclass
class TrainResult:
    """Where the run ended: EMA model (unwrapped), last validation numbers, output folder."""

    model: nn.Module
    step: int
    validation: dict[str, float]
    out_dir: Path
    log: list[dict[str, float]]


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this rank's device): one GPU per process under torchrun (LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world, device) if world > 1 else (0, 1, device)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(model: nn.Module, data: TrainData, objective: Objective, optim: OptimizerRecipe,
        loop: TrainLoop, identity: dict | None = None) -> TrainResult:
    """Train `model` for `loop.steps` steps (resuming from `out_dir/checkpoint.pt` if it exists; one already at
    `loop.steps` is returned as it is, one past it refused).

    identity: what makes the run this run (network, its kwargs, init, data): stored in the checkpoint, and a
    checkpoint of another run in `out_dir` is refused instead of being resumed (or, finished, exported as this
    one). The schedule (steps, lr, milestones) may change between runs."""
    device = torch.device(resolve_device(loop.device))
    if loop.threads:
        torch.set_num_threads(loop.threads)
    rank, world, device = _distributed(device)
    _seed_everything(loop.seed)  # same initial weights on every rank
    out_dir = Path(loop.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(loop.ema_decay), use_buffers=True)
    optimizer, scheduler = optim.build(model.parameters())
    step, log = 0, []
    checkpoint = out_dir / "checkpoint.pt"
    signature = json.dumps(identity, sort_keys=True, default=str) if identity is not None else None
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        _check_same_run(checkpoint, state.get("identity"), signature)
        if state["step"] > loop.steps:
            # Nothing to train, and an export would record weights trained for more steps than asked.
            raise SrnszError(f"{checkpoint} is already at step {state['step']}, past train.steps={loop.steps}: "
                             f"give train.steps={state['step']} to export it as it is, more to train on, or "
                             f"train.out_dir=<a new folder> to start over")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, log = state["step"], json.loads(state["log"])
        # The recipe may have changed between runs (e.g. fewer steps): its schedule wins over the saved one,
        # including milestones already passed.
        scheduler.milestones, scheduler.gamma = Counter(optim.milestones), optim.gamma
        current = optim.lr * optim.gamma ** sum(1 for m in optim.milestones if m <= step)
        for group in optimizer.param_groups:
            group["lr"], group["initial_lr"] = current, optim.lr
        scheduler.base_lrs = [optim.lr for _ in optimizer.param_groups]
    if rank == 0:  # the log on disk is the checkpoint's: steps after the last save are redone
        (out_dir / "val_log.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    trained = (DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
               if world > 1 else model)
    rng = np.random.default_rng([loop.seed, rank, step])  # a resumed run draws fresh samples
    torch.manual_seed(loop.seed * 1000 + rank * 100003 + step)
    validation_set = {k: v.to(device) for k, v in data.validation_set().items()}
    bar = tqdm(total=loop.steps, initial=step, disable=not loop.progress or rank != 0, desc="train", unit="step")
    latest: dict[str, float] = log[-1] if log else {}
    while step < loop.steps:
        trained.train()
        batch = {k: v.to(device) for k, v in data.train_batch(loop.batch_size, rng).items()}
        loss = objective.loss(trained, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if loop.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip)
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4g}", **({"val": f"{latest['psnr']:.2f}dB"} if latest else {}))
        last = step == loop.steps
        if rank == 0 and (step % loop.val_every == 0 or last):
            ema.module.eval()
            latest = {"step": step, "loss": float(loss.item()),
                      **objective.validate(ema.module, validation_set)}
            log.append(latest)
            with open(out_dir / "val_log.jsonl", "a") as f:
                f.write(json.dumps(latest) + "\n")
        if rank == 0 and (step % loop.ckpt_every == 0 or last):
            _save_checkpoint(checkpoint, model, ema, optimizer, scheduler, step, log, signature)
    bar.close()
    if world > 1:
        dist.barrier()
    return TrainResult(ema.module.eval(), step, latest, out_dir, log)


def _check_same_run(checkpoint: Path, saved: str | None, signature: str | None) -> None:
    """Refuse to resume a checkpoint written by a run of another network, init or data."""
    if signature is None or saved == signature:
        return
    if saved is None:
        raise SrnszError(f"{checkpoint} was written without a record of its run, so it cannot be told apart from "
                         f"another run's; remove it, or give train.out_dir=<a new folder>")
    old, new = json.loads(saved), json.loads(signature)
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    raise SrnszError(f"{checkpoint} belongs to another training run (its {', '.join(differ)} differ from this "
                     f"one's); give train.out_dir=<a new folder>, or remove it to start over")


def _save_checkpoint(path: Path, model: nn.Module, ema: AveragedModel, optimizer: torch.optim.Optimizer,
                     scheduler: Any, step: int, log: list, signature: str | None = None) -> None:
    state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "step": step, "log": json.dumps(log)}
    if signature is not None:
        state["identity"] = signature
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a run killed mid-save keeps the previous checkpoint
