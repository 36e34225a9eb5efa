"""A3C with generalized advantage estimation, as baby-a3c computes it (pure, no Ray).

Per 20-step rollout:  δ_t = r_t + γ V(s_{t+1}) - V(s_t);  A_t = Σ_k (γτ)^k δ_{t+k}
policy loss = -Σ log π(a_t|s_t) A_t;  value loss = ½ Σ (R_t - V(s_t))²  with R_t the
discounted return bootstrapped from V(s_T);  loss = policy + ½ value - β · entropy.
Rewards are clipped to [-1, 1] for learning (scores are reported unclipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from raycl import RayclError
from raycl.atari.env import make_env, preprocess
from raycl.atari.net import ActorCritic


@dataclass(frozen=True)
class A3CConfig:
    gamma: float = 0.99
    tau: float = 1.0
    rnn_steps: int = 20  # rollout length between updates
    entropy: float = 0.01
    lr: float = 1e-4
    grad_clip: float = 40.0
    max_episode_steps: int = 10_000  # training episodes are cut here (baby-a3c: 1e4)
    full_action_space: bool = True
    pipeline: bool = False  # Ray workers play the next rollout while the server applies the last gradient


def discount(x: np.ndarray, gamma: float) -> np.ndarray:
    """y_t = Σ_k gamma^k x_{t+k} (a reverse scan)."""
    out = np.zeros(len(x), dtype=np.float64)
    acc = 0.0
    for t in range(len(x) - 1, -1, -1):
        acc = x[t] + gamma * acc
        out[t] = acc
    return out


def a3c_loss(values: torch.Tensor, logps: torch.Tensor, actions: torch.Tensor, rewards: np.ndarray,
             gamma: float, tau: float, entropy_coef: float) -> tuple[torch.Tensor, dict]:
    """values (T+1, 1) with the bootstrap V(s_T) last (0 when the episode ended), logps (T, A)
    log-softmax of the logits, actions (T,), rewards (T,) clipped. Returns loss and parts."""
    v = values.detach().view(-1).double().numpy()
    delta = np.asarray(rewards, dtype=np.float64) + gamma * v[1:] - v[:-1]
    gae = torch.as_tensor(discount(delta, gamma * tau), dtype=torch.float32)
    logpy = logps.gather(1, actions.view(-1, 1)).view(-1)
    policy_loss = -(logpy * gae).sum()
    r = np.asarray(rewards, dtype=np.float64).copy()
    r[-1] += gamma * v[-1]
    returns = torch.as_tensor(discount(r, gamma), dtype=torch.float32)
    value_loss = 0.5 * (returns - values[:-1, 0]).pow(2).sum()
    entropy = -(logps * logps.exp()).sum()
    loss = policy_loss + 0.5 * value_loss - entropy_coef * entropy
    parts = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item(),
             "loss": loss.item()}
    return loss, parts


@dataclass
class RolloutStats:
    frames: int = 0
    updates: int = 0
    returns: list[float] = field(default_factory=list)  # finished episodes' scores (unclipped)
    lengths: list[int] = field(default_factory=list)
    losses: dict = field(default_factory=dict)  # name -> sum over updates

    def add_loss(self, parts: dict) -> None:
        for k, x in parts.items():
            self.losses[k] = self.losses.get(k, 0.0) + x

    def mean_losses(self) -> dict:
        return {k: x / max(1, self.updates) for k, x in self.losses.items()}


class Player:
    """One environment and the recurrent state of the episode in play: the actor side of a
    worker. `rollout(model)` plays up to rnn_steps frames and returns the loss to minimise."""

    def __init__(self, game: str, cfg: A3CConfig, seed: int):
        self.cfg = cfg
        self.env = make_env(game, seed=seed, full_action_space=cfg.full_action_space)
        self.gen = torch.Generator().manual_seed(seed)
        self.state = torch.from_numpy(preprocess(self.env.reset(seed=seed)[0]))
        self.hx = None
        self.ep_return, self.ep_len = 0.0, 0

    def rollout(self, model: ActorCritic, stats: RolloutStats) -> torch.Tensor:
        cfg = self.cfg
        hx = model.initial_state() if self.hx is None else self.hx.detach()
        values, logps, actions, rewards = [], [], [], []
        done = False
        for _ in range(cfg.rnn_steps):
            value, logits, hx = model(self.state.unsqueeze(0), hx)
            logp = F.log_softmax(logits, dim=-1)
            action = int(torch.multinomial(logp.exp().detach(), 1, generator=self.gen))
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.ep_return += float(reward)
            self.ep_len += 1
            stats.frames += 1
            done = terminated or truncated or self.ep_len >= cfg.max_episode_steps
            values.append(value)
            logps.append(logp)
            actions.append(action)
            rewards.append(max(-1.0, min(1.0, float(reward))))
            if done:
                stats.returns.append(self.ep_return)
                stats.lengths.append(self.ep_len)
                self.ep_return, self.ep_len = 0.0, 0
                obs, _ = self.env.reset()
                self.state = torch.from_numpy(preprocess(obs))
                break
            self.state = torch.from_numpy(preprocess(obs))
        if done:
            self.hx = None
            bootstrap = torch.zeros(1, 1)
        else:
            self.hx = hx.detach()
            with torch.no_grad():
                bootstrap = model(self.state.unsqueeze(0), self.hx)[0]
        loss, parts = a3c_loss(torch.cat(values + [bootstrap]), torch.cat(logps),
                               torch.tensor(actions), np.asarray(rewards), cfg.gamma, cfg.tau, cfg.entropy)
        if not math.isfinite(parts["loss"]):
            raise RayclError(f"A3C loss became {parts['loss']} in a rollout: the run diverged and stops here, keeping "
                             "its last good checkpoint; lower --lr")
        stats.updates += 1
        stats.add_loss(parts)
        return loss

    def close(self) -> None:
        self.env.close()


def gradients(model: ActorCritic, loss: torch.Tensor, clip: float) -> torch.Tensor:
    """The loss's gradient as one flat vector (in parameters() order), norm-clipped."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def apply_flat_gradients(model: ActorCritic, optimizer: torch.optim.Optimizer, flat: torch.Tensor) -> None:
    """One optimiser step on the shared model from a worker's flat gradient."""
    offset = 0
    for p in model.parameters():
        k = p.numel()
        p.grad = flat[offset:offset + k].view_as(p).to(p.dtype).clone()
        offset += k
    optimizer.step()


@torch.no_grad()
def play_episodes(model: ActorCritic, game: str, episodes: int, seed: int, max_steps: int | None = None,
                  full_action_space: bool = True) -> list[float]:
    """Scores of `episodes` episodes (each cut at max_steps frames when given), actions
    sampled from the policy. Env and sampling are seeded from `seed`, so two networks
    evaluated with the same seed face the same game randomness."""
    env = make_env(game, full_action_space=full_action_space)
    gen = torch.Generator().manual_seed(seed)
    scores = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            hx, total, steps = model.initial_state(), 0.0, 0
            while True:
                _, logits, hx = model(torch.from_numpy(preprocess(obs)).unsqueeze(0), hx)
                action = int(torch.multinomial(F.softmax(logits, -1), 1, generator=gen))
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                steps += 1
                if terminated or truncated or (max_steps is not None and steps >= max_steps):
                    break
            scores.append(total)
    finally:
        env.close()
    return scores
