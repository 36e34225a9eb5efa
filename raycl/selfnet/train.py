"""Training and evaluating task networks: one loop, shared by Self-Net's independent task
networks and the single network of every baseline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from raycl.selfnet.flat import flatten, load_flat
from raycl.selfnet.streams import Task
from raycl.selfnet.tasknets import make_tasknet


@dataclass
class TaskNetConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.5
    anchor_lam: float = 1e-3  # eq 2.5: TaskLoss + λ·MSE(θ*, θ) when fine-tuning from a source θ*
    anchor_reduction: str = "mean"  # "mean" = the text's MSE; "sum" = the authors' code Σ(p - θ*)²
    clip: float = 10.0  # gradient-norm clip
    lr_flag: str = "--lr"  # the flag that sets `lr`, named when training diverges

    def to_dict(self) -> dict:
        return asdict(self)




def task_logits(net: nn.Module, x: torch.Tensor, task: Task, **kw) -> torch.Tensor:
    return head_of(net(x, **kw), task)


def head_of(logits: torch.Tensor, task: Task) -> torch.Tensor:
    """The task's own logits: its head, a slice of the network's outputs."""
    return logits[:, task.head: task.head + task.num_classes]


def fit(net: nn.Module, task: Task, cfg: TaskNetConfig, extra_loss: Callable[[], torch.Tensor | None] | None = None,
        seed: int = 0, params=None, loss_fn=None, on_step: Callable[[], None] | None = None) -> nn.Module:
    """SGD on the task's training set; `extra_loss()` is added to every batch (regularizers);
    `on_step()` runs after every update (the gradients still in .grad)."""
    import math

    from raycl.guard import DivergenceGuard

    device = next(net.parameters()).device
    # a fresh network's cross-entropy is about log(classes); a loss 100x that has diverged
    guard = DivergenceGuard(f"task '{task.name}' training loss",
                            f"lower {cfg.lr_flag}" + ("" if extra_loss is None else " (or the baseline's λ, --baseline-lam)"),
                            start=max(1.0, math.log(max(2, task.num_classes))))
    opt = torch.optim.SGD(params if params is not None else net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = task.train_x, task.train_y
    net.train()
    for epoch in range(1, cfg.epochs + 1):
        for idx in torch.randperm(len(y_all), generator=gen).split(cfg.batch_size):
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            loss = loss_fn(x, y) if loss_fn is not None else F.cross_entropy(task_logits(net, x, task), y)
            extra = extra_loss() if extra_loss is not None else None
            if extra is not None:
                loss = loss + extra
            guard.check(loss.item(), f"epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # large-λ penalties (EWC with big Fisher entries) can blow SGD up; clipping keeps them stable
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.clip)
            opt.step()
            if on_step is not None:
                on_step()
    net.eval()
    return net


@torch.no_grad()
def accuracy(net: nn.Module, task: Task, batch: int = 1024) -> float:
    device = next(net.parameters()).device
    net.eval()
    correct = 0
    for x, y in zip(task.test_x.split(batch), task.test_y.split(batch)):
        correct += int((task_logits(net, x.to(device), task).argmax(1).cpu() == y).sum())
    return correct / max(1, len(task.test_y))


def accuracy_of_flat(arch: str, num_outputs: int, flat: torch.Tensor, task: Task) -> float:
    return accuracy(load_flat(make_tasknet(arch, num_outputs), flat), task)


def train_task_network(task: Task, arch: str, num_outputs: int, cfg: TaskNetConfig, init: torch.Tensor | None = None,
                       source: torch.Tensor | None = None, seed: int = 0) -> tuple[torch.Tensor, float]:
    """One independent task network (§2.3): start from `init` (or a seeded random init),
    fine-tune with TaskLoss + λ·MSE(source, θ) when a source is given. Returns (θ, test accuracy)."""
    torch.manual_seed(seed)
    net = make_tasknet(arch, num_outputs, seed=seed)
    if init is not None:
        load_flat(net, init)
    extra = None
    if source is not None and cfg.anchor_lam > 0:
        src = [s.detach() for s in _split_like(net, source)]
        reduce = torch.sum if cfg.anchor_reduction == "sum" else None
        n = sum(p.numel() for p in net.parameters())

        def extra():
            sq = sum(((p - s) ** 2).sum() for p, s in zip(net.parameters(), src))
            return cfg.anchor_lam * (sq if reduce is not None else sq / n)

    fit(net, task, cfg, extra, seed=seed)
    return flatten(net), accuracy(net, task)


def _split_like(net: nn.Module, flat: torch.Tensor) -> list[torch.Tensor]:
    out, offset = [], 0
    for p in net.parameters():
        out.append(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return out
