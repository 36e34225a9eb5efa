"""Continual-learning baselines on one shared task network, behind one interface.

Every method is a `Regularizer`: a penalty added to the task loss while a task is learned,
and a consolidation step once it is learned. SGD, L2, Online L2, EWC and Online EWC are all
the same quadratic form Σ_t Σ_i w_{t,i} (θ_i − a_{t,i})², differing in the importance w
(1, or the diagonal Fisher information) and in whether old anchors are kept (L2, EWC;
Kirkpatrick et al. 2017) or merged into one running term (Online L2; Online EWC,
Schwarz et al. 2018 / Huszár 2018: F̃ ← γF̃ + F_t, anchor ← θ_t).
Progress & Compress (Schwarz et al. 2018) trains a fresh active column with lateral
adaptors from the frozen knowledge base, then distils it into the knowledge base under the
Online EWC regularizer.
Synaptic Intelligence (Zenke et al. 2017) is the same quadratic form with an importance
gathered along the training path; Learning without Forgetting (Li & Hoiem 2017) distils the
network's own outputs from before the task on the new task's images; experience replay keeps
a few images of every task and trains on them beside the new task's.

Every method runs task-agnostic (one head shared by all tasks: the protocol of the Self-Net
chapter) or task-aware (`task_aware_stream`: each task its own head, picked by the task's
identity at test time, the knowledge Self-Net's per-task recollection also uses).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from raycl import RayclError
from raycl.selfnet.streams import Task
from raycl.selfnet.tasknets import TaskNet, make_tasknet
from raycl.selfnet.train import TaskNetConfig, accuracy, fit, head_of, task_logits


def fisher_diagonal(net: nn.Module, task: Task, samples: int = 256, seed: int = 0) -> list[torch.Tensor]:
    """Diagonal of the Fisher information at θ: E_x E_{y~p_θ(y|x)} (∂ log p_θ(y|x) / ∂θ)²,
    labels sampled from the model (the true Fisher), per-sample gradients with vmap."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(task.train_y), generator=gen)[:samples]
    device = next(net.parameters()).device
    x = task.train_x[idx].to(device)
    params = {k: v.detach() for k, v in net.named_parameters()}
    with torch.no_grad():
        probs = F.softmax(task_logits(net, x, task), 1)
    y = torch.multinomial(probs.cpu(), 1, generator=gen).flatten().to(device)

    def logp(p, xi, yi):
        out = head_of(functional_call(net, p, (xi.unsqueeze(0),)), task)
        return -F.cross_entropy(out, yi.unsqueeze(0))

    g = vmap(grad(logp), in_dims=(None, 0, 0))(params, x, y)
    return [(g[k] ** 2).mean(0) for k, _ in net.named_parameters()]


class Regularizer:
    """sgd: plain cross-entropy. Subclasses change the loss, add a penalty, or learn along the
    way (after every step, after each finished task)."""

    name = "sgd"

    def __init__(self, lam: float = 0.0):
        self.lam = lam

    def before_task(self, net: nn.Module, task: Task) -> None:
        pass

    def loss(self, net: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(task_logits(net, x, task), y)

    def penalty(self, net: nn.Module) -> torch.Tensor | None:
        return None

    def after_step(self, net: nn.Module) -> None:
        pass

    def after_task(self, net: nn.Module, task: Task) -> None:
        pass


class Quadratic(Regularizer):
    """λ/2 Σ_terms Σ_i w_i (θ_i − a_i)²; importance = Fisher or 1; online merges the terms."""

    def __init__(self, name: str, lam: float, fisher: bool, online: bool, gamma: float = 1.0,
                 fisher_samples: int = 256):
        super().__init__(lam)
        self.name, self.fisher, self.online, self.gamma = name, fisher, online, gamma
        self.fisher_samples = fisher_samples
        self.terms: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def penalty(self, net):
        if not self.terms:
            return None
        total = 0.0
        for w, a in self.terms:
            total = total + sum((wi * (p - ai) ** 2).sum() for wi, p, ai in zip(w, net.parameters(), a))
        return 0.5 * self.lam * total

    def after_task(self, net, task):
        anchor = [p.detach().clone() for p in net.parameters()]
        if self.fisher:
            w = fisher_diagonal(net, task, self.fisher_samples)
        else:
            w = [torch.ones_like(p) for p in anchor]
        if self.online and self.terms:
            old_w, _ = self.terms[0]
            # Online L2 keeps weight 1 at the latest anchor; Online EWC accumulates γF̃ + F_t
            w = [self.gamma * o + n for o, n in zip(old_w, w)] if self.fisher else w
            self.terms = [(w, anchor)]
        else:
            self.terms.append((w, anchor))


class SynapticIntelligence(Quadratic):
    """Importance from the path: ω_i += −g_i Δθ_i at every step; after a task
    Ω_i += ω_i / (Δ_i² + ξ), Δ_i the task's total change; penalty λ Σ Ω_i (θ_i − θ*_i)²."""

    def __init__(self, lam: float, xi: float = 0.1):
        super().__init__("si", 2 * lam, fisher=False, online=True)  # Quadratic halves λ; SI's c has no 1/2
        self.xi = xi
        self.omega: list[torch.Tensor] = []

    def before_task(self, net, task):
        self.start = [p.detach().clone() for p in net.parameters()]
        self.prev = [p.detach().clone() for p in net.parameters()]
        self.path = [torch.zeros_like(p) for p in self.start]

    def after_step(self, net):
        with torch.no_grad():
            for p, prev, w in zip(net.parameters(), self.prev, self.path):
                if p.grad is not None:
                    w.add_(-p.grad * (p - prev))
                prev.copy_(p)

    def after_task(self, net, task):
        with torch.no_grad():
            gain = [w.clamp(min=0) / ((p - s) ** 2 + self.xi) for w, p, s in zip(self.path, net.parameters(), self.start)]
            self.omega = gain if not self.omega else [o + g for o, g in zip(self.omega, gain)]
            self.terms = [(self.omega, [p.detach().clone() for p in net.parameters()])]


class LearningWithoutForgetting(Regularizer):
    """Cross-entropy on the new task plus λ·T²·KL between the network's softened outputs on the
    new task's images and those of the network as it was before the task, on every earlier head."""

    name = "lwf"

    def __init__(self, lam: float, temperature: float = 2.0):
        super().__init__(lam)
        self.temperature = temperature
        self.old: nn.Module | None = None
        self.heads: list[Task] = []  # one earlier task per head (task-agnostic: the one shared head)

    def before_task(self, net, task):
        self.old = copy.deepcopy(net).eval() if self.heads else None
        for p in self.old.parameters() if self.old is not None else ():
            p.requires_grad_(False)

    def loss(self, net, task, x, y):
        logits = net(x)
        loss = F.cross_entropy(head_of(logits, task), y)
        if self.old is None:
            return loss
        with torch.no_grad():
            before = self.old(x)
        t = self.temperature
        for old in self.heads:
            loss = loss + self.lam * t * t * F.kl_div(F.log_softmax(head_of(logits, old) / t, 1),
                                                      F.log_softmax(head_of(before, old) / t, 1),
                                                      log_target=True, reduction="batchmean")
        return loss

    def after_task(self, net, task):
        if all(old.head != task.head for old in self.heads):
            self.heads.append(task)


class Replay(Regularizer):
    """A small buffer: `per_task` training images of every finished task (chosen at random); each
    batch of a new task is joined by a batch drawn from the buffer, weighted λ."""

    name = "replay"

    def __init__(self, lam: float, per_task: int = 20, seed: int = 0):
        super().__init__(lam)
        self.per_task = per_task
        self.gen = torch.Generator().manual_seed(seed)
        self.memory: list[tuple[Task, torch.Tensor, torch.Tensor]] = []

    def loss(self, net, task, x, y):
        loss = F.cross_entropy(task_logits(net, x, task), y)
        if not self.memory:
            return loss
        picks = torch.randint(len(self.memory) * self.per_task, (len(y),), generator=self.gen)
        replayed = 0.0
        for t, (old, mx, my) in enumerate(self.memory):
            idx = picks[(picks // self.per_task) == t] % len(my)
            if len(idx):
                out = task_logits(net, mx[idx].to(x.device), old)
                replayed = replayed + F.cross_entropy(out, my[idx].to(x.device), reduction="sum")
        return loss + self.lam * replayed / len(y)

    def after_task(self, net, task):
        idx = torch.randperm(len(task.train_y), generator=self.gen)[: self.per_task]
        self.memory.append((task, task.train_x[idx].clone(), task.train_y[idx].clone()))


# λ of each baseline when --baseline-lam does not set one (SI's c, from its paper's 0.1-1;
# LwF's distillation weight; replay's weight of the buffer batch)
DEFAULT_LAMS = {"sgd": 0.0, "l2": 0.01, "online_l2": 0.01, "ewc": 100.0, "online_ewc": 100.0, "pc": 100.0,
                "si": 1.0, "lwf": 1.0, "replay": 1.0}


def make_regularizer(name: str, lam: float | None = None, gamma: float = 1.0, seed: int = 0) -> Regularizer:
    if name not in DEFAULT_LAMS:
        raise RayclError(f"unknown baseline '{name}'; choose from: {', '.join(DEFAULT_LAMS)}")
    lam = DEFAULT_LAMS[name] if lam is None else lam
    if name == "sgd":
        return Regularizer(0.0)
    if name in ("l2", "online_l2"):
        return Quadratic(name, lam, fisher=False, online=name == "online_l2")
    if name == "si":
        return SynapticIntelligence(lam)
    if name == "lwf":
        return LearningWithoutForgetting(lam)
    if name == "replay":
        return Replay(lam, seed=seed)
    return Quadratic(name, lam, fisher=True, online=name in ("online_ewc", "pc"), gamma=gamma)


BASELINES = tuple(DEFAULT_LAMS)
BASELINE_NAMES = {"sgd": "SGD", "l2": "L2", "online_l2": "Online L2", "ewc": "EWC", "online_ewc": "Online EWC",
                  "pc": "Progress & Compress", "si": "Synaptic Intelligence", "lwf": "Learning without Forgetting",
                  "replay": "Replay (20 images a task)"}


def task_aware_stream(tasks: list[Task]) -> tuple[list[Task], int]:
    """The same tasks, each with a head of its own (outputs laid end to end), and the outputs needed."""
    from dataclasses import replace

    out, first = [], 0
    for t in tasks:
        out.append(replace(t, head=first))
        first += t.num_classes
    return out, first


class SharedLearner:
    """One task network learns every task in turn; `reg` keeps it from forgetting."""

    def __init__(self, arch: str, num_outputs: int, cfg: TaskNetConfig, reg: Regularizer, seed: int = 0, device=None):
        self.device = torch.device(device or "cpu")
        self.net = make_tasknet(arch, num_outputs, seed=seed).to(self.device)
        self.arch, self.num_outputs, self.cfg, self.reg, self.seed = arch, num_outputs, cfg, reg, seed
        self.name = reg.name

    def learn(self, task: Task, index: int) -> None:
        net, reg = self.net, self.reg
        reg.before_task(net, task)
        fit(net, task, self.cfg, lambda: reg.penalty(net), seed=self.seed + index,
            loss_fn=lambda x, y: reg.loss(net, task, x, y), on_step=lambda: reg.after_step(net))
        reg.after_task(net, task)

    def accuracy(self, task: Task) -> float:
        return accuracy(self.net, task)


class Adaptors(nn.Module):
    """Lateral connections (P&C): layer i of the active column also receives
    α_i · U_i(input the knowledge base's layer i saw), U_i shaped like layer i."""

    def __init__(self, template: TaskNet):
        super().__init__()
        self.maps = nn.ModuleList(copy.deepcopy(layer) for layer in template.layers)
        for m in self.maps:
            m.reset_parameters()
        self.alpha = nn.Parameter(torch.full((len(self.maps),), 0.1))

    def forward(self, kb_inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        # layer 0 sees the raw input in both columns: no lateral needed there
        return [None] + [self.alpha[i] * self.maps[i](h) for i, h in enumerate(kb_inputs) if i > 0]


class ProgressCompress(SharedLearner):
    """Progress: a fresh active column + adaptors learn the task, knowledge base frozen.
    Compress: the knowledge base distils the active column (KL) under Online EWC."""

    def __init__(self, arch, num_outputs, cfg, reg: Regularizer, seed=0, device=None):
        super().__init__(arch, num_outputs, cfg, reg, seed, device)
        self.name = "pc"

    def learn(self, task: Task, index: int) -> None:
        kb = self.net
        active = make_tasknet(self.arch, self.num_outputs, seed=self.seed + 1000 + index).to(self.device)
        adapt = Adaptors(kb).to(self.device)
        for p in kb.parameters():
            p.requires_grad_(False)

        def progress_loss(x, y):
            lateral = adapt(kb.layer_inputs(x))
            return F.cross_entropy(head_of(active(x, lateral), task), y)

        fit(active, task, self.cfg, seed=self.seed + index, params=list(active.parameters()) + list(adapt.parameters()),
            loss_fn=progress_loss)
        for p in kb.parameters():
            p.requires_grad_(True)
        active.eval()

        def compress_loss(x, y):
            with torch.no_grad():
                teacher = F.log_softmax(head_of(active(x, adapt(kb.layer_inputs(x))), task), 1)
            student = F.log_softmax(task_logits(kb, x, task), 1)
            return F.kl_div(student, teacher, log_target=True, reduction="batchmean")

        fit(kb, task, self.cfg, lambda: self.reg.penalty(kb), seed=self.seed + index, loss_fn=compress_loss)
        self.reg.after_task(kb, task)


def make_learner(name: str, arch: str, num_outputs: int, cfg: TaskNetConfig, lam: float | None = None,
                 seed: int = 0, device=None) -> SharedLearner:
    reg = make_regularizer(name, lam, seed=seed)
    cls = ProgressCompress if name == "pc" else SharedLearner
    return cls(arch, num_outputs, cfg, reg, seed, device)
