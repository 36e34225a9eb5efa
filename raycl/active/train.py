"""Training one stage's model on the labeled pool, with model selection on the validation
split (the state with the best validation accuracy is kept), and batched inference."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from raycl import RayclError
from raycl.active.config import ActiveTrainConfig


@torch.no_grad()
def predict(model, images: torch.Tensor, device, batch_size: int = 1024, stochastic: bool = False):
    """(probabilities, latents) for `images`, one forward pass per batch."""
    from raycl.active.models import set_dropout

    model.eval()
    set_dropout(model, stochastic)
    probs, latents = [], []
    for i in range(0, len(images), batch_size):
        logits, z = model.predict(images[i:i + batch_size].to(device, non_blocking=True), stochastic=stochastic)
        probs.append(logits.float().softmax(-1))
        latents.append(z.float())
    set_dropout(model, False)
    if not probs:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(probs).cpu(), torch.cat(latents).cpu()


def accuracy(model, images, labels, device, batch_size: int = 1024) -> float:
    probs, _ = predict(model, images, device, batch_size)
    return float((probs.argmax(1) == labels.cpu()).float().mean()) if len(labels) else float("nan")


def fit(model, images: torch.Tensor, labels: torch.Tensor, val_images: torch.Tensor, val_labels: torch.Tensor,
        cfg: ActiveTrainConfig, device, generator: torch.Generator) -> tuple[torch.nn.Module, dict]:
    """Train on (images, labels); return the model at its best validation accuracy. With
    `cfg.patience`, stop early once that many epochs pass without a better one (`cfg.epochs`
    is then the cap)."""
    if len(images) == 0:
        raise RayclError("the labeled pool is empty; use --initial > 0")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        raise RayclError(f"optimizer must be adam or sgd, got {cfg.optimizer}")
    n = len(images)
    per_epoch = math.ceil(n / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch))
    images, labels = images.to(device), labels.to(device)
    best, best_state, best_epoch = -1.0, None, 0
    from raycl.guard import DivergenceGuard

    # the first batch's loss is the start, but never below a fresh classifier's cross-entropy
    # (log classes): a warm-started model's small first loss would make the limit too tight
    guard = DivergenceGuard("active-learning training loss", "lower --lr",
                            floor=math.log(max(2, int(labels.max()) + 1)))
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            if len(b) < 2 and n >= 2:  # batch norm needs two samples
                continue
            loss, _ = model.loss(images[b], labels[b])
            guard.check(loss.item(), f"epoch {epoch} of a stage's training")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch % cfg.eval_every == 0 or epoch == epochs:
            acc = accuracy(model, val_images, val_labels, device)
            if acc > best:
                best, best_state, best_epoch = acc, copy.deepcopy(model.state_dict()), epoch
            elif cfg.patience and epoch - best_epoch >= cfg.patience and epoch * per_epoch >= cfg.min_steps:
                break
    model.load_state_dict(best_state)
    return model, {"val_accuracy": best, "epochs": epochs, "trained_epochs": epoch, "best_epoch": best_epoch}


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2 ** 63))


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
