"""BatchBALD (Kirsch et al. 2019): greedily grow the batch that maximises the mutual
information between its joint labels and the model, I(y_1..y_n; w) =
H(y_1..y_n) - Σ H(y_i | w), with MC-dropout samples standing in for w.

The joint entropy is exact while the label configurations of the chosen batch number at
most `configs`; beyond that, `configs` configurations are sampled from the joint and the
entropy is estimated by importance weighting (as the paper does). For speed only the
`candidates` samples with the highest single-sample BALD score are considered."""

from __future__ import annotations

import numpy as np
import torch

from raycl.active.query import Strategy, entropy, top


def batchbald_select(probs: torch.Tensor, b: int, configs: int = 512, generator: torch.Generator | None = None) -> list[int]:
    """probs (N, T, C): T MC samples per point. Returns b positions chosen greedily."""
    n, t, c = probs.shape
    p = probs.double().clamp_min(1e-12)
    cond = entropy(p).mean(1)  # (N,) E_w H(y|w)
    col = torch.ones(t, 1, dtype=torch.float64)  # P(config | w_t) / P(config), per config column
    logpm = torch.zeros(1, dtype=torch.float64)  # log P(config)
    exact = True
    chosen: list[int] = []
    taken = torch.zeros(n, dtype=torch.bool)
    cond_sum = 0.0
    for _ in range(min(b, n)):
        # r[n, m, c] = P(y_new = c | config m) ; joint P(m, c) = P(m) r
        r = torch.einsum("tm,ntc->nmc", col, p) / t
        h_mc = -(r * r.clamp_min(1e-300).log()).sum(2) - logpm  # (N, M): -Σ_c r (log P(m) + log r)
        weight = logpm.exp() if exact else torch.full_like(logpm, 1.0 / len(logpm))
        joint = (h_mc * weight).sum(1)
        score = joint - cond - cond_sum
        score[taken] = -float("inf")
        j = int(score.argmax())
        chosen.append(j)
        taken[j] = True
        cond_sum += float(cond[j])
        # extend the configurations with the new point's label
        new = col.unsqueeze(2) * p[j].unsqueeze(1)  # (T, M, C) = P(m, c | w) / P(m)
        pmc = new.mean(0)  # (M, C) = P(c | m)
        if exact and len(logpm) * c <= configs:
            logpm = (logpm.unsqueeze(1) + pmc.clamp_min(1e-300).log()).reshape(-1)
            col = (new / pmc.unsqueeze(0)).reshape(t, -1)
            continue
        if exact:  # switch to sampled configurations drawn from the exact joint
            joint_p = (logpm.exp().unsqueeze(1) * pmc).reshape(-1)
            pick = torch.multinomial(joint_p / joint_p.sum(), configs, replacement=True, generator=generator)
            m_idx, c_idx = pick // c, pick % c
            exact = False
        else:  # sampled: draw each configuration's new label from P(c | m)
            m_idx = torch.arange(len(logpm))
            c_idx = torch.multinomial(pmc / pmc.sum(1, keepdim=True), 1, generator=generator).squeeze(1)
        keep = new[:, m_idx, c_idx] / pmc[m_idx, c_idx].unsqueeze(0)
        logpm = logpm[m_idx] + pmc[m_idx, c_idx].clamp_min(1e-300).log()
        col = keep
    return chosen


class BatchBALD(Strategy):
    name = "batchbald"

    def __init__(self, passes: int = 20, configs: int = 512, candidates: int = 500):
        self.passes, self.configs, self.candidates = int(passes), int(configs), int(candidates)

    def rank(self, ctx, b, rng):
        probs = ctx.mc_probs(ctx.unlabeled, self.passes)
        bald = (entropy(probs.mean(1)) - entropy(probs).mean(1)).numpy()
        pool = top(bald, max(b, min(self.candidates, len(bald))))
        g = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        picked = batchbald_select(probs[torch.as_tensor(pool)], b, self.configs, g)
        return pool[np.array(picked, dtype=np.int64)]
