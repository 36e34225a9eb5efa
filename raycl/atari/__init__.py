"""Incremental Atari with Self-Net (dissertation §2.4.7).

Pure pieces, no Ray: `net` (the baby-a3c actor-critic task network), `env` (ALE games and
the 80x80 preprocessing), `a3c` (GAE loss, rollouts, evaluation episodes). Ray plumbing
lives apart in `parallel` (parameter actor + worker actors: asynchronous A3C) and the
experiment in `incremental` (train each game, fold it into Self-Net, replay every game).
"""

from raycl import lazy_exports

# imported on first use (raycl --help stays free of torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    f"{__name__}.net": ("ActorCritic",),
})
