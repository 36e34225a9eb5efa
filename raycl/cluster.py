"""Connecting to Ray: a running cluster when there is one, otherwise a local one that
stays on this machine (loopback address, token authentication left on)."""

from __future__ import annotations

import os


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None, **kwargs):
    """Connect to `address` (or $RAY_ADDRESS, as `ray job submit` sets), else start a local Ray.

    The local instance binds to 127.0.0.1 and keeps Ray's default token authentication.
    Calling it again when Ray is already up is a no-op.
    """
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs.setdefault("log_to_driver", True)
    kwargs.setdefault("configure_logging", True)
    if address:
        return ray.init(address=address, **kwargs)
    # "local": never attach to whatever /tmp/ray/ray_current_cluster names (on a shared machine,
    # another user's `ray start`, or a dead cluster)
    return ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        **kwargs,
    )
