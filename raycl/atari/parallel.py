"""Ray plumbing: asynchronous A3C with worker actors and one parameter actor.

The parameter actor holds the shared network and its Adam. Each worker actor owns one
environment and a local copy of the network; in a loop it loads the latest shared weights,
plays a 20-step rollout, computes the gradient and pushes it; the parameter actor applies
gradients one at a time, in the order they arrive, and answers with the new weights
(Hogwild-free A3C: the same pattern as processes sharing a model, on Ray actors).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from raycl.atari.a3c import A3CConfig, Player, RolloutStats, apply_flat_gradients, gradients, play_episodes
from raycl.atari.net import FULL_ACTIONS, ActorCritic


def num_actions(cfg: A3CConfig, game: str) -> int:
    if cfg.full_action_space:
        return FULL_ACTIONS
    from raycl.atari.env import make_env

    env = make_env(game, full_action_space=False)
    n = int(env.action_space.n)
    env.close()
    return n


def _flat(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()


def _load(model: torch.nn.Module, flat) -> None:
    from raycl.selfnet.flat import load_flat

    load_flat(model, torch.from_numpy(np.array(flat, dtype=np.float32)))


class ParameterServer:
    """The shared network and its optimiser (Adam, lr 1e-4: baby-a3c's shared Adam)."""

    def __init__(self, actions: int, lr: float, seed: int, state: dict | None = None):
        from raycl.host import keep_heap

        keep_heap()  # 3.4 MB weight and gradient vectors every rollout: no mmap/munmap churn
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        self.model = ActorCritic(actions)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.updates = 0
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.updates = int(state["updates"])

    def weights(self) -> np.ndarray:
        return _flat(self.model)

    def apply(self, grad: np.ndarray) -> np.ndarray:
        apply_flat_gradients(self.model, self.opt, torch.from_numpy(np.array(grad, dtype=np.float32)))
        self.updates += 1
        return _flat(self.model)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "updates": self.updates}


class Worker:
    """One A3C worker: an environment, a local network, the shared one's handle."""

    def __init__(self, game: str, cfg: A3CConfig, seed: int, actions: int, server):
        from raycl.host import keep_heap

        keep_heap()
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        self.cfg, self.server = cfg, server
        self.player = Player(game, cfg, seed)
        self.model = ActorCritic(actions)
        self.weights = None

    def ready(self) -> bool:
        return True

    def run(self, frames: int) -> dict:
        """Play at least `frames` frames (whole rollouts), one update per rollout.

        With cfg.pipeline the worker pushes rollout k's gradient and plays rollout k+1 on the
        weights the server returned for push k-1 while the server applies push k: its own last
        update reaches it one rollout late, and neither side waits for the other."""
        import ray

        stats, t0 = RolloutStats(), time.perf_counter()
        busy = {"rollout": 0.0, "gradient": 0.0, "sync": 0.0}
        w = self.weights if self.weights is not None else ray.get(self.server.weights.remote())
        inflight = None
        while stats.frames < frames:
            t = time.perf_counter()
            _load(self.model, w)
            t1 = time.perf_counter()
            loss = self.player.rollout(self.model, stats)
            t2 = time.perf_counter()
            g = gradients(self.model, loss, self.cfg.grad_clip).numpy()
            t3 = time.perf_counter()
            pushed = self.server.apply.remote(g)
            if self.cfg.pipeline:
                w = ray.get(inflight) if inflight is not None else w
                inflight = pushed
            else:
                w = ray.get(pushed)
            t4 = time.perf_counter()
            busy["rollout"] += t2 - t1
            busy["gradient"] += t3 - t2
            busy["sync"] += (t1 - t) + (t4 - t3)
        if inflight is not None:
            w = ray.get(inflight)
        self.weights = w
        return {"frames": stats.frames, "updates": stats.updates, "returns": stats.returns,
                "ale_frames": int(self.player.env.unwrapped.ale.getFrameNumber()),  # emulator frames, all time
                "lengths": stats.lengths, "losses": stats.mean_losses(), "seconds": time.perf_counter() - t0,
                "busy": busy}


def _evaluate(flat: np.ndarray, actions: int, game: str, episodes: int, seed: int, max_steps, full: bool):
    torch.set_num_threads(1)
    model = ActorCritic(actions)
    _load(model, flat)
    return play_episodes(model, game, episodes, seed, max_steps, full)


class RayA3C:
    """Trains one game's network with W worker actors; evaluates networks as Ray tasks."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        import ray

        from raycl.cluster import init_ray

        init_ray(address=address, num_cpus=num_cpus)
        # the parameter actor takes no CPU slot: it only sums gradients into Adam
        self._server = ray.remote(num_cpus=0)(ParameterServer)
        self._worker = ray.remote(num_cpus=1)(Worker)
        self._eval = ray.remote(num_cpus=1)(_evaluate)

    def train(self, game: str, cfg: A3CConfig, frames: int, workers: int, seed: int, state: dict | None = None,
              start_frames: int = 0, chunk: int = 200, on_chunk=None, checkpoint=None, checkpoint_every: int = 0,
              on_ready=None):
        """Asynchronous A3C on `game` until `frames` frames in total (counting start_frames).

        on_chunk(result, total_frames) sees every worker report; checkpoint(state, total)
        is called every checkpoint_every frames and at the end; on_ready() once every worker
        actor is up (its process, network and emulator made), before the first frame. Returns the final shared
        network's flat weights and the parameter actor's state."""
        import ray

        actions = num_actions(cfg, game)
        chunk = max(cfg.rnn_steps, min(chunk, (frames - start_frames) // workers))  # every worker gets work
        server = self._server.remote(actions, cfg.lr, seed, state)
        pool = [self._worker.remote(game, cfg, seed * 1000 + i + start_frames, actions, server)
                for i in range(workers if start_frames < frames else 0)]
        total, launched, next_ckpt = start_frames, start_frames, start_frames + (checkpoint_every or frames + 1)
        pending = {}
        try:
            ray.get([w.ready.remote() for w in pool])
            if on_ready is not None:
                on_ready()
            for w in pool:
                if launched < frames:
                    n = min(chunk, frames - launched)
                    pending[w.run.remote(n)] = (w, n)
                    launched += n
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                w, asked = pending.pop(ref)
                result = ray.get(ref)
                total += result["frames"]
                launched += result["frames"] - asked  # whole rollouts: a worker overshoots by < 20
                if on_chunk is not None:
                    on_chunk(result, total)
                if checkpoint is not None and total >= next_ckpt:
                    checkpoint(ray.get(server.state.remote()), total)
                    next_ckpt = total + checkpoint_every
                if launched < frames:
                    n = min(chunk, frames - launched)
                    pending[w.run.remote(n)] = (w, n)
                    launched += n
            state = ray.get(server.state.remote())
            flat = ray.get(server.weights.remote())
            if checkpoint is not None:
                checkpoint(state, total)
            return torch.from_numpy(flat.copy()), state, total
        finally:
            for w in pool:
                ray.kill(w)
            ray.kill(server)

    def evaluate(self, jobs: list[dict], progress=None) -> list[list[float]]:
        """Each job: flat, actions, game, episodes, seed, max_steps, full. Runs in parallel."""
        import ray

        refs = [self._eval.remote(np.asarray(j["flat"], dtype=np.float32), j["actions"], j["game"], j["episodes"],
                                  j["seed"], j["max_steps"], j["full"]) for j in jobs]
        out = {}
        index = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        while pending:
            [ref], pending = ray.wait(pending, num_returns=1)
            out[index[ref]] = ray.get(ref)
            if progress is not None:
                progress(1)
        return [out[i] for i in range(len(refs))]


def config_dict(cfg: A3CConfig) -> dict:
    return asdict(cfg)
