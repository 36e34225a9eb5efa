"""Continual task streams (§2.4.2-2.4.6): Permuted, Split (binary tuples, pairs),
Split CIFAR-10 (one class against the rest), Split CIFAR-100 (tasks of 10 classes).

Every stream works on any ImageSet pair (train, test): the real MNIST / CIFAR sets or the
offline digits, resized to the task network's input (28x28x1 or 32x32x3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raycl import RayclError
from raycl.data import ImageSet, to_common
from raycl.selfnet.names import STREAM_ARCH, STREAMS


@dataclass
class Task:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int  # the task uses logits[:, head:head + num_classes] of the task network
    info: dict = field(default_factory=dict)
    head: int = 0  # first logit of the task's head: 0 when tasks share one head (task-agnostic)


def _binary(train: ImageSet, test: ImageSet, pos: list[int], neg: list[int], neg_ratio: float,
            gen: torch.Generator, name: str) -> Task:
    """Positives (label 1) from `pos`, negatives (label 0) drawn from `neg`, neg_ratio per positive
    (1.5 gives the dissertation's ~40% positive / 60% negative)."""
    def take(d: ImageSet):
        is_pos = torch.isin(d.labels, torch.tensor(pos))
        pos_idx = is_pos.nonzero().flatten()
        neg_idx = torch.isin(d.labels, torch.tensor(neg)).nonzero().flatten()
        k = min(len(neg_idx), int(round(neg_ratio * len(pos_idx))))
        neg_idx = neg_idx[torch.randperm(len(neg_idx), generator=gen)[:k]]
        idx = torch.cat([pos_idx, neg_idx])
        return d.images[idx], is_pos[idx].long()

    tx, ty = take(train)
    vx, vy = take(test)
    return Task(name, tx, ty, vx, vy, 2, {"pos": pos, "neg": neg})


def make_stream(kind: str, train: ImageSet, test: ImageSet, num_tasks: int, seed: int = 0,
                neg_ratio: float = 1.5, negatives: int = 4, classes_per_task: int = 10) -> list[Task]:
    """`num_tasks` tasks of stream `kind` drawn (with `seed`) from the train/test sets."""
    if kind not in STREAMS:
        raise RayclError(f"unknown stream '{kind}'; choose one of: {', '.join(STREAMS)}")
    if num_tasks < 1:
        raise RayclError(f"--tasks must be at least 1, got {num_tasks}")
    arch = STREAM_ARCH[kind]
    size, channels = (28, 1) if arch == "mnist" else (32, 3)
    train, test = to_common(train, size, channels), to_common(test, size, channels)
    gen = torch.Generator().manual_seed(seed)
    c = train.num_classes
    tasks = []
    if kind == "permuted":
        d = size * size * channels
        for t in range(num_tasks):
            perm = torch.arange(d) if t == 0 else torch.randperm(d, generator=gen)

            def apply(x, perm=perm):
                return x.flatten(1)[:, perm].view_as(x)

            tasks.append(Task(f"perm{t}", apply(train.images), train.labels, apply(test.images), test.labels, c,
                              {"identity": t == 0}))
    elif kind == "split":  # tuples: one positive digit against `negatives` others (§2.4.2)
        if c < 1 + negatives:
            raise RayclError(f"split tuples need at least {1 + negatives} classes, {train.name} has {c}")
        for t in range(num_tasks):
            order = torch.randperm(c, generator=gen).tolist()
            pos, neg = order[:1], sorted(order[1:1 + negatives])
            tasks.append(_binary(train, test, pos, neg, neg_ratio, gen, f"split{t}:{pos[0]}vs{''.join(map(str, neg))}"))
    elif kind == "pairs":  # (0,1), (2,3), ... then random pairs
        for t in range(num_tasks):
            a, b = (2 * t, 2 * t + 1) if 2 * t + 1 < c else tuple(torch.randperm(c, generator=gen)[:2].tolist())
            tasks.append(_binary(train, test, [b], [a], 1.0, gen, f"pair{t}:{a}/{b}"))
    elif kind == "cifar10":  # one class against the rest, one task per class
        for t in range(num_tasks):
            pos = t % c
            tasks.append(_binary(train, test, [pos], [k for k in range(c) if k != pos], neg_ratio, gen,
                                 f"class{t}:{pos}"))
    else:  # cifar100: disjoint groups of classes; with too few classes, each task relabels them
        k = min(classes_per_task, c)
        disjoint = num_tasks * k <= c
        order = torch.randperm(c, generator=gen).tolist()
        for t in range(num_tasks):
            keep = order[t * k:(t + 1) * k] if disjoint else torch.randperm(c, generator=gen)[:k].tolist()
            tr, te = train.classes(keep), test.classes(keep)
            tasks.append(Task(f"group{t}", tr.images, tr.labels, te.images, te.labels, k,
                              {"classes": keep, "disjoint": disjoint}))
    return tasks


def provenance(tasks: list[Task]) -> dict:
    """raycl.provenance.record of a stream: per task, the (x, y) arrays its network trains on
    ("NAME train") and is tested on ("NAME test"), as the stream built them (resized, permuted,
    relabelled), and the environment."""
    from raycl.provenance import record

    return record(**{f"{t.name} {part}": [getattr(t, f"{part}_x"), getattr(t, f"{part}_y")]
                     for t in tasks for part in ("train", "test")})


def load_pair(source: str, root=None, download: bool = False) -> tuple[ImageSet, ImageSet]:
    """(train, test) of a raycl.data source."""
    from raycl.data import SOURCES, load

    if source not in SOURCES:
        raise RayclError(f"unknown dataset '{source}'; choose one of: {', '.join(SOURCES)}")
    splits = SOURCES[source].splits
    if "train" in splits and "test" in splits:
        return load(source, "train", root, download), load(source, "test", root, download)
    if source == "glyphs":  # 20 drawings per class: the first 14 train, the last 6 test
        d = load(source, "all")
        idx = torch.arange(len(d))
        rank = torch.zeros_like(idx)
        for g in d.by_class():
            rank[g] = torch.arange(len(g))
        return d.subset((rank < 14).nonzero().flatten()), d.subset((rank >= 14).nonzero().flatten())
    raise RayclError(f"dataset '{source}' has no train/test splits; use digits, glyphs, mnist, cifar10 or cifar100")
