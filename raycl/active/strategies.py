"""Query strategies behind one interface: `strategy.select(ctx, b, rng)` returns b distinct
pool indices taken from `ctx.unlabeled`. Build one from a spec string with `make_strategy`,
e.g. "uncertainty", "weibull:threshold=0.5", "mc-dropout:passes=20".

random, uncertainty, weibull, coreset, mc-dropout, dbal (BALD), ensemble (variation
ratios), vaal, batchbald, waal."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from raycl import RayclError
from raycl.active import weibull as W
from raycl.active.adversarial import VAAL, WAAL
from raycl.active.bald import BatchBALD
from raycl.active.query import Strategy, entropy, top
from raycl.active.train import predict


class Random(Strategy):
    name = "random"

    def rank(self, ctx, b, rng):
        return rng.choice(len(ctx.unlabeled), size=b, replace=False)


class Uncertainty(Strategy):
    """The b samples with the lowest maximum class probability (§3.3.3)."""

    name = "uncertainty"

    def rank(self, ctx, b, rng):
        probs, _ = ctx.predict(ctx.unlabeled)
        return top(-probs.max(1).values.numpy(), b)


class Weibull(Strategy):
    """Outlier probability from a per-class Weibull model of latent distances (§3.3.4).

    order='highest' queries the highest outlier probabilities (the text); 'lowest' the lowest
    (one path of the authors' code). threshold=t treats samples with probability > t as
    unknown and never queries them unless nothing else is left (open-set rejection);
    threshold=None is the plain reading. threshold='val' sets one threshold per class each
    stage: the `accept` quantile of the outlier probabilities of the validation images (held
    out of L, in distribution) predicted as that class, so that about that share of unseen
    in-distribution images counts as known in every class. (The Weibulls are fitted on
    distances of training samples, which sit closer to their class mean than unseen ones, and
    their scales differ widely between classes: one global t rejects whole classes.)
    Among the known samples, rank='outlier' queries by outlier probability (order),
    'uncertainty' by the lowest maximum class probability, 'random' at random; balance=1 takes
    them round-robin over the predicted classes. unknowns=1 also rejects what the oracle has
    taught: a sample whose nearest latent among the labeled and the refused samples is a
    refused one (known unknowns)."""

    name = "weibull"

    def __init__(self, threshold: float | str | None = None, order: str = "highest", tail: float = 0.05,
                 min_tail: int = 5, distance: str = "cosine", accept: float = 0.9, rank: str = "outlier",
                 balance: int = 0, unknowns: int = 0):
        if order not in ("highest", "lowest"):
            raise RayclError(f"weibull order must be highest or lowest, got {order}")
        if distance not in ("cosine", "euclidean"):
            raise RayclError(f"weibull distance must be cosine or euclidean, got {distance}")
        if rank not in ("outlier", "uncertainty", "random"):
            raise RayclError(f"weibull rank must be outlier, uncertainty or random, got {rank}")
        if threshold in (None, "none", "val"):
            self.threshold = None if threshold == "none" else threshold
        else:
            try:
                self.threshold = float(threshold)
            except ValueError:
                raise RayclError(f"weibull threshold must be a number in (0, 1), val or none, got {threshold}") from None
            if not 0 < self.threshold < 1:
                raise RayclError(f"weibull threshold must be in (0, 1), got {self.threshold}")
        if not 0 < float(accept) <= 1:
            raise RayclError(f"weibull accept must be in (0, 1], got {accept}")
        self.order, self.tail, self.min_tail, self.distance = order, tail, min_tail, distance
        self.accept, self.rank_by, self.balance = float(accept), rank, bool(int(balance))
        self.unknowns = bool(int(unknowns))

    def model(self, ctx):
        """Fit on L, score U: one forward pass over L ∪ U gives probabilities and latents of both."""
        n_l = len(ctx.labeled)
        probs, latents = ctx.predict(np.concatenate([ctx.labeled, ctx.unlabeled]))
        pred = probs.argmax(1)
        model = W.fit(latents[:n_l], torch.as_tensor(ctx.labels), pred[:n_l], ctx.num_classes, self.tail,
                      self.min_tail, self.distance)
        return model, latents[n_l:], pred[n_l:], probs[n_l:], latents[:n_l]

    def outlier_probability(self, ctx) -> torch.Tensor:
        model, z, pred, _, _ = self.model(ctx)
        return model.outlier_probability(z, pred)

    def near_refused(self, ctx, z: torch.Tensor, z_labeled: torch.Tensor) -> np.ndarray:
        """Known unknowns: unlabeled samples whose nearest latent (cosine) among the labeled and
        the oracle-refused samples is a refused one (the refused are back in U)."""
        zn = F.normalize(z.float(), dim=1)
        ref = torch.as_tensor(np.searchsorted(ctx.unlabeled, ctx.refused))
        to_refused = (zn @ zn[ref].T).max(1).values
        to_labeled = (zn @ F.normalize(z_labeled.float(), dim=1).T).max(1).values
        return (to_refused >= to_labeled).numpy()

    def pick(self, score, predicted, b: int) -> np.ndarray:
        return balanced(score, predicted, b) if self.balance else top(score, b)

    def log_threshold(self, ctx, model) -> np.ndarray:
        """Per class, the rejection threshold as a log cumulative hazard, log(-log(1 - t))."""
        if self.threshold != "val":
            return np.full(ctx.num_classes, np.log(-np.log1p(-self.threshold)))
        if ctx.validation is None or len(ctx.validation) == 0:
            raise RayclError("weibull threshold=val needs validation images (run it inside the active loop) "
                             "or give a number, e.g. threshold=0.25")
        probs, z = predict(ctx.model, ctx.validation, ctx.device, ctx.batch_size)
        pred = probs.argmax(1)
        s = model.log_hazard(z, pred).numpy()
        pred = pred.numpy()
        # per class: the class Weibulls' scales differ widely, so one cut would reject whole classes
        cut = np.full(ctx.num_classes, np.quantile(s, self.accept))
        for c in np.unique(pred):
            cut[c] = np.quantile(s[pred == c], self.accept)
        return cut

    def rank(self, ctx, b, rng):
        model, z, pred, probs, z_labeled = self.model(ctx)
        s = model.log_hazard(z, pred).numpy()  # ranks as the outlier probability, without saturating at 1
        if self.rank_by == "uncertainty":
            score = -probs.max(1).values.numpy()
        elif self.rank_by == "random":
            score = rng.random(len(s))
        else:
            score = s if self.order == "highest" else -s
        if self.threshold is None:
            return self.pick(score, pred.numpy(), b)
        cut = self.log_threshold(ctx, model)
        known = s <= cut[pred.numpy()]  # outlier probability <= threshold
        if self.unknowns and ctx.refused is not None and len(ctx.refused):
            known &= ~self.near_refused(ctx, z, z_labeled)
        ctx.info["rejected"] = int((~known).sum())
        with np.errstate(over="ignore"):  # far cuts are probability 1
            ctx.info["threshold"] = float(np.median(-np.expm1(-np.exp(cut))))
        first = np.flatnonzero(known)
        first = first[self.pick(score[first], pred.numpy()[first], b)]
        if len(first) == b:
            return first
        rest = np.flatnonzero(~known)  # nothing known left: the least outlying of the rejected
        return np.concatenate([first, rest[top(-s[rest], b - len(first))]])


def balanced(score, groups, b: int) -> np.ndarray:
    """Positions of b samples taken round-robin over groups (the best of each group, then the
    second best of each, ...), best first within a group; a round is ordered by score."""
    score = np.asarray(score, dtype=np.float64)
    order = np.lexsort((-score, groups))  # by group, best first
    g = groups[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    within = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    return order[np.lexsort((-score[order], within))][:b]


class CoreSet(Strategy):
    """k-center greedy on latents (Sener & Savarese): repeatedly take the unlabeled sample
    farthest from every labeled or already chosen one."""

    name = "coreset"

    def rank(self, ctx, b, rng):
        _, z = ctx.predict(np.concatenate([ctx.labeled, ctx.unlabeled]))
        z = z.to(ctx.device)
        zl, zu = z[:len(ctx.labeled)], z[len(ctx.labeled):]
        nearest = torch.full((len(zu),), float("inf"), device=ctx.device)
        for i in range(0, len(zl), 4096):
            nearest = torch.minimum(nearest, torch.cdist(zu, zl[i:i + 4096]).min(1).values)
        chosen = []
        if len(zl) == 0:
            first = int(rng.integers(len(zu)))
            chosen.append(first)
            nearest = torch.cdist(zu, zu[first:first + 1]).squeeze(1)
        while len(chosen) < b:
            j = int(nearest.argmax())
            chosen.append(j)
            nearest = torch.minimum(nearest, torch.cdist(zu, zu[j:j + 1]).squeeze(1))
            nearest[j] = -1.0
        return np.array(chosen, dtype=np.int64)


class MCDropout(Strategy):
    """Max entropy of the mean prediction over MC passes (dropout on, z sampled)."""

    name = "mc-dropout"

    def __init__(self, passes: int = 10):
        self.passes = int(passes)

    def rank(self, ctx, b, rng):
        return top(entropy(ctx.mc_probs(ctx.unlabeled, self.passes).mean(1)).numpy(), b)


class BALD(Strategy):
    """DBAL (Gal et al. 2017) with the BALD score: mutual information between the label and
    the model, H[mean p] - mean H[p], over MC passes."""

    name = "dbal"

    def __init__(self, passes: int = 10):
        self.passes = int(passes)

    def rank(self, ctx, b, rng):
        p = ctx.mc_probs(ctx.unlabeled, self.passes)
        return top((entropy(p.mean(1)) - entropy(p).mean(1)).numpy(), b)


class Ensemble(Strategy):
    """Variation ratio over an ensemble (Beluch et al.): the current model plus `members - 1`
    fresh models trained on the labeled pool; 1 - (votes for the mode) / members, ties broken
    by the entropy of the mean prediction."""

    name = "ensemble"

    def __init__(self, members: int = 3):
        self.members = int(members)

    def rank(self, ctx, b, rng):
        if ctx.train_fresh is None:
            raise RayclError("the ensemble strategy needs a way to train models (run it inside the active loop)")
        models = [ctx.model] + [ctx.train_fresh(int(rng.integers(2 ** 31))) for _ in range(self.members - 1)]
        probs = torch.stack([ctx.predict(ctx.unlabeled, model=m)[0] for m in models], 1)  # (N, M, C)
        votes = torch.nn.functional.one_hot(probs.argmax(2), ctx.num_classes).sum(1)
        ratio = 1 - votes.max(1).values.float() / len(models)
        return top((ratio + 1e-3 * entropy(probs.mean(1)) / np.log(ctx.num_classes)).numpy(), b)


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": Random,
    "uncertainty": Uncertainty,
    "weibull": Weibull,
    "coreset": CoreSet,
    "mc-dropout": MCDropout,
    "dbal": BALD,
    "ensemble": Ensemble,
    "vaal": VAAL,
    "batchbald": BatchBALD,
    "waal": WAAL,
}


def _value(text: str):
    if text.lower() in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def make_strategy(spec: str) -> Strategy:
    """'name' or 'name:key=value,key=value'."""
    name, _, rest = spec.partition(":")
    if name not in STRATEGIES:
        raise RayclError(f"unknown strategy '{name}'; choose from {', '.join(STRATEGIES)}")
    opts = {}
    for item in filter(None, rest.split(",")):
        key, eq, val = item.partition("=")
        if not eq:
            raise RayclError(f"strategy option '{item}' in '{spec}' must look like key=value")
        opts[key.replace("-", "_")] = _value(val)
    try:
        return STRATEGIES[name](**opts)
    except TypeError as e:
        raise RayclError(f"bad options for strategy '{name}': {e}") from None
