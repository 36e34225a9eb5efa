"""The latent store and Algorithm 1 ("Lifelong Learning via Continual Self-Modeling").

Per task the store keeps only its latent code: r x s floats, where r = ceil(q / n) is the
number of n-long sub-vectors of the task's q-long network (r = 1 when q <= n), plus
integers naming the architecture. Everything else is the one auto-encoder and the
buffer of at most m networks waiting to be folded in.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from raycl import RayclError
from raycl.selfnet.ae import ContractiveAE, cosine_per_network
from raycl.selfnet.flat import join, pad_mask, split_pad


@dataclass(frozen=True)
class NetMeta:
    """What a recollection needs to become a network again: no weights, only its shape."""

    arch: str = "flat"
    num_outputs: int = 0
    length: int = 0


@dataclass
class FitResult:
    iterations: int  # AE updates made
    reached: bool  # the stopping metric met the threshold
    threshold: float
    cosines: list[float]  # final cosine per network
    history: list[float] = field(default_factory=list)  # stopping metric before every update
    seconds: float = 0.0


def pack(vectors: list[torch.Tensor], n: int, device=None):
    """Sub-vector rows of several networks: X (rows, n), owner index per row, padding mask."""
    rows, owner, masks = [], [], []
    for i, v in enumerate(vectors):
        rows.append(split_pad(v.float(), n))
        masks.append(pad_mask(v.numel(), n))
        owner += [i] * rows[-1].shape[0]
    x = torch.cat(rows).to(device)
    return x, torch.tensor(owner, device=device), torch.cat(masks).to(device)


def fit_ae(ae: ContractiveAE, vectors: list[torch.Tensor], threshold: float, lam: float = 1e-4,
           lr: float = 1e-3, max_iters: int = 5000, stop: str = "mean", progress=None,
           warmup: int = 100) -> FitResult:
    """Train `ae` full-batch on the networks until their mean (or minimum) cosine similarity
    reaches `threshold`. The check comes before each update, so the AE that is kept is the
    one whose cosines were measured. The learning rate ramps up over `warmup` updates: a
    fresh Adam's first steps move every weight by ~lr, which would wreck an AE that already
    holds older networks before their gradients are even seen."""
    if stop not in ("mean", "min"):
        raise RayclError(f"stop must be 'mean' or 'min', got '{stop}'")
    device = next(ae.parameters()).device
    x, owner, mask = pack(vectors, ae.n, device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    ramp = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / warmup) if warmup > 0 else 1.0)
    from raycl.guard import DivergenceGuard

    # 1 - cos is at most 2; only the contractive term can grow past 100x the loss of
    # orthogonal recollections (1), and then the AE has diverged
    guard = DivergenceGuard("auto-encoder loss", "lower --ae-lr", start=1.0)
    history, t0, reached, it = [], time.perf_counter(), False, 0
    for it in range(max_iters + 1):
        z, pre = ae.encode_pre(x)
        cos = cosine_per_network(x, ae.decode(z), owner, mask, len(vectors))
        metric = float((cos.mean() if stop == "mean" else cos.min()).detach())
        history.append(metric)
        if progress is not None:
            progress(it, metric)
        if metric >= threshold:
            reached = True
            break
        if it == max_iters:
            break
        loss = (1 - cos).mean() + lam * ae.jacobian_sq_norm(pre).mean()
        guard.check(float(loss.detach()), f"update {it}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ramp.step()
    return FitResult(it, reached, threshold, cos.detach().cpu().tolist(), history, time.perf_counter() - t0)


class SelfNet:
    """One contractive AE, a latent store and a buffer of m networks (Algorithm 1).

    thresholds[i] and lr[i] are the cosine threshold and Adam learning rate of the (i+1)-th
    consolidation; the last one repeats (the Split-MNIST scaling runs use thresholds 0.9996,
    0.987, 0.986, and the authors' code Adam 3e-3 for the first batch, then 1e-4).

    residual=True codes every network as a difference from the decoder's output bias, which
    the first consolidation starts at its networks' mean (`ContractiveAE.centre_on`); the
    store still holds only the AE and s floats per sub-vector."""

    def __init__(self, n: int, latent: int, hidden=(), activation: str = "tanh", buffer_size: int = 1,
                 thresholds=(0.997,), lam: float = 1e-4, lr: float = 1e-3, max_iters: int = 5000,
                 stop: str = "mean", device=None, seed: int = 0, decoder_hidden=None, residual: bool = False):
        if buffer_size < 1:
            raise RayclError(f"buffer size must be at least 1, got {buffer_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.ae = ContractiveAE(n, latent, tuple(hidden), activation, decoder_hidden, residual).to(self.device)
        self.buffer_size, self.thresholds = buffer_size, tuple(thresholds)
        self.lr = tuple(lr) if isinstance(lr, (tuple, list)) else (float(lr),)
        self.lam, self.max_iters, self.stop = lam, max_iters, stop
        self.latents: dict[str, torch.Tensor] = {}  # task -> (r, s): the only per-task floats
        self.meta: dict[str, NetMeta] = {}
        self.buffer: list[tuple[str, torch.Tensor, NetMeta]] = []
        self.fits: list[FitResult] = []

    # --- Algorithm 1 ------------------------------------------------------------------
    def add(self, key: str, flat: torch.Tensor, meta: NetMeta | None = None, progress=None) -> FitResult | None:
        """Put a trained network in the buffer; fold the buffer in when it is full."""
        if key in self.latents or any(k == key for k, _, _ in self.buffer):
            raise RayclError(f"task '{key}' is already stored")
        flat = flat.detach().reshape(-1).float().cpu()
        meta = meta or NetMeta(length=flat.numel())
        if meta.length != flat.numel():
            raise ValueError(f"meta says {meta.length} weights, vector has {flat.numel()}")
        self.buffer.append((key, flat, meta))
        if len(self.buffer) >= self.buffer_size:
            return self.consolidate(progress)
        return None

    def consolidate(self, progress=None) -> FitResult | None:
        """Recollect every stored network, add the buffer, retrain the AE to the threshold,
        keep only the latents."""
        if not self.buffer:
            return None
        keys = list(self.latents)
        vectors = [self.recollect(k) for k in keys]  # R: recollections, fixed targets
        for key, flat, meta in self.buffer:
            keys.append(key)
            vectors.append(flat)
            self.meta[key] = meta
        stage = len(self.fits)
        if stage == 0 and self.ae.residual:  # a fresh AE: start it at the first networks' centre
            self.ae.centre_on(torch.cat([split_pad(v, self.ae.n) for v in vectors]).to(self.device))
        threshold = self.thresholds[min(stage, len(self.thresholds) - 1)]
        lr = self.lr[min(stage, len(self.lr) - 1)]
        result = fit_ae(self.ae, vectors, threshold, self.lam, lr, self.max_iters, self.stop, progress)
        with torch.no_grad():
            self.latents = {k: self.ae.encode(split_pad(v, self.ae.n).to(self.device)).cpu()
                            for k, v in zip(keys, vectors)}
        self.buffer = []
        self.fits.append(result)
        return result

    def recollect(self, key: str) -> torch.Tensor:
        """The network's weights: decoded from its latent, or the original while buffered."""
        for k, flat, _ in self.buffer:
            if k == key:
                return flat.clone()
        if key not in self.latents:
            raise RayclError(f"no task '{key}' in the store; stored: {', '.join(self.keys()) or 'none'}")
        with torch.no_grad():
            chunks = self.ae.decode(self.latents[key].to(self.device)).cpu()
        return join(chunks, self.meta[key].length)

    def keys(self) -> list[str]:
        return list(self.latents) + [k for k, _, _ in self.buffer]

    def in_buffer(self, key: str) -> bool:
        return any(k == key for k, _, _ in self.buffer)

    # --- storage accounting -----------------------------------------------------------
    def storage(self) -> dict:
        """Honest storage in floats: AE parameters + latents (+ buffered networks) vs the originals."""
        stored = len(self.latents)
        ae_params = self.ae.num_params()
        latent_floats = sum(v.numel() for v in self.latents.values())
        buffer_floats = sum(f.numel() for _, f, _ in self.buffer)
        original = sum(m.length for m in self.meta.values()) + buffer_floats
        total = ae_params + latent_floats + buffer_floats
        return {
            "tasks_stored": stored,
            "tasks_buffered": len(self.buffer),
            "ae_params": ae_params,
            "latent_floats": latent_floats,
            "buffer_floats": buffer_floats,
            "selfnet_floats": total,
            "independent_floats": original,
            "storage_ratio": original / total if total else 0.0,  # > 1: Self-Net stores less
            # the dissertation's "compression factor": tasks stored per latent dimension (k / s)
            "compression_factor": stored / self.ae.latent,
        }

    # --- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self.buffer:
            raise RayclError("fold the buffer in (consolidate) before saving the store")
        return {
            "ae_config": self.ae.config(),
            "ae_state": {k: v.cpu() for k, v in self.ae.state_dict().items()},
            "latents": dict(self.latents),
            "meta": {k: asdict(m) for k, m in self.meta.items()},
            "settings": {"buffer_size": self.buffer_size, "thresholds": list(self.thresholds), "lam": self.lam,
                         "lr": list(self.lr), "max_iters": self.max_iters, "stop": self.stop},
        }

    @classmethod
    def from_state(cls, state: dict, device=None) -> "SelfNet":
        try:
            cfg, settings = state["ae_config"], state["settings"]
            net = cls(cfg["n"], cfg["latent"], cfg["hidden"], cfg["activation"], device=device,
                      decoder_hidden=cfg["decoder_hidden"], residual=cfg.get("residual", False), **settings)
            net.ae.load_state_dict(state["ae_state"])
            net.latents = {k: v.float() for k, v in state["latents"].items()}
            net.meta = {k: NetMeta(**m) for k, m in state["meta"].items()}
        except (KeyError, TypeError, RuntimeError) as e:
            raise RayclError(f"not a Self-Net store ({type(e).__name__}: {e}); point at a store.pt a run wrote") from None
        return net

