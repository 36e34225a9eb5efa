"""Connecting to Ray: a running cluster when there is one, otherwise a local one that
stays on this machine (loopback listeners, token authentication enforced)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from raycl import RayclError

log = logging.getLogger(__name__)

# Opt-in to a local Ray without token authentication (the CLI's --insecure-local-ray).
INSECURE_ENV = "RAYCL_INSECURE_LOCAL_RAY"
LOCAL_ADDRESSES = (None, "", "local")


def allow_insecure_local_ray() -> None:
    """Let init_ray start a local Ray with RAY_AUTH_MODE=disabled (children inherit it)."""
    os.environ[INSECURE_ENV] = "1"


def insecure_local_ray_allowed() -> bool:
    return os.environ.get(INSECURE_ENV, "").strip().lower() in ("1", "true", "yes")


def default_token_path() -> Path:
    """Where Ray 2.60 reads the token when neither RAY_AUTH_TOKEN nor RAY_AUTH_TOKEN_PATH is set."""
    return Path.home() / ".ray" / "auth_token"


def _ensure_private_token() -> None:
    """Make sure the token Ray will use exists and only its owner can read it.

    Ray's order: $RAY_AUTH_TOKEN, then the file $RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token.
    Left to itself Ray writes the default file with the umask (world-readable under 022);
    raycl creates it 0600 instead (same format: 64 hex characters) and tightens an existing one.
    """
    if os.environ.get("RAY_AUTH_TOKEN"):
        return
    custom = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(custom) if custom else default_token_path()
    if custom and not path.is_file():
        raise RayclError(f"RAY_AUTH_TOKEN_PATH={custom} is not a readable file; point it at the "
                         "cluster's token, or unset it to use ~/.ray/auth_token")
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        log.info("raycl: wrote a new Ray authentication token to %s (mode 0600)", path)
    elif (st := path.stat()).st_mode & (stat.S_IRWXG | stat.S_IRWXO) and st.st_uid == os.getuid():
        path.chmod(0o600)
        log.warning("raycl: %s was readable by other users; made it 0600", path)


def _enforce_token_auth() -> None:
    """RAY_AUTH_MODE=token for the local Ray raycl starts, unless the user opted out explicitly.

    Ray 2.60 turns token authentication on by default for a new local ray.init() cluster only
    while RAY_AUTH_MODE is unset; RAY_AUTH_MODE=disabled anywhere in the environment silently
    turns it off. raycl sets the mode itself and refuses anything but token without the opt-in.
    """
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.strip().lower() != "token":
        if insecure_local_ray_allowed():
            log.warning("raycl: starting a local Ray WITHOUT token authentication (RAY_AUTH_MODE=%s, "
                        "%s=1): any process that reaches its ports can run code as you", mode, INSECURE_ENV)
            return
        raise RayclError(
            f"RAY_AUTH_MODE={mode} would start the local Ray without token authentication "
            f"(anyone reaching its ports could run code as you); unset RAY_AUTH_MODE, or accept "
            f"the risk with --insecure-local-ray ({INSECURE_ENV}=1)"
        )
    os.environ["RAY_AUTH_MODE"] = "token"  # inherited by the GCS, raylet and workers
    _ensure_private_token()
    from ray._raylet import AuthenticationMode, AuthenticationTokenLoader, Config, get_authentication_mode

    # RayConfig caches the environment the first time it is read in this process: refresh it
    # (as Ray does when it turns token mode on itself) so this driver sends the token too.
    if get_authentication_mode() != AuthenticationMode.TOKEN:
        Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    if get_authentication_mode() != AuthenticationMode.TOKEN:
        raise RayclError("could not turn on Ray's token authentication (RAY_AUTH_MODE=token was "
                         "not taken up); report this with your Ray version")


@contextlib.contextmanager
def _loopback_stays_loopback():
    """Ray 2.60 replaces a loopback address (a new node's _node_ip_address, or the host of the
    address ray.init connects to) by the machine's own address, so that other nodes could
    join, unless ray_constants.ENABLE_RAY_CLUSTER is False, as on macOS/Windows, where it stays
    127.0.0.1. Only the address resolution inside ray.init reads the flag."""
    import ray._private.ray_constants as ray_constants

    had = hasattr(ray_constants, "ENABLE_RAY_CLUSTER")
    old = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if had:
            ray_constants.ENABLE_RAY_CLUSTER = old
        else:
            del ray_constants.ENABLE_RAY_CLUSTER


def _is_loopback(address: str) -> bool:
    """host:port (or a bare host) on the loopback interface; False for ray:// and anything unparsable."""
    import ipaddress

    if "://" in address:
        return False
    host = address
    if host.startswith("["):  # [::1]:6379
        host = host[1:host.find("]")]
    elif host.count(":") == 1:  # 127.0.0.1:6379 (more colons: a bare IPv6 address)
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _start_local(ray, num_cpus, num_gpus, kwargs):
    """ray.init for a new local instance whose listeners are all on the loopback interface."""
    # The node address decides where the GCS, raylet, workers, agents and the Prometheus
    # endpoints listen: 127.0.0.1 (kept by _loopback_stays_loopback) keeps them all on loopback.
    # Ray starts workers at nice 15: on a machine that also runs anything else (a second
    # experiment, the driver's own work) raycl's tasks would then get a fraction of a core.
    os.environ.setdefault("RAY_worker_niceness", "0")
    system_config = dict(kwargs.pop("_system_config", None) or {})
    if "RAY_enable_metrics_collection" not in os.environ:
        # no Prometheus exporter in the dashboard agent (nothing here reads Ray's metrics)
        system_config.setdefault("enable_metrics_collection", False)
    with _loopback_stays_loopback():
        return ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            _system_config=system_config,
            **kwargs,
        )


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None, **kwargs):
    """Connect to `address` (or $RAY_ADDRESS, as `ray job submit` sets), else start a local Ray.

    The local instance listens on 127.0.0.1 only and requires Ray's token (RAY_AUTH_MODE=token
    is set here, not left to Ray's default); RAY_AUTH_MODE=disabled is refused with a
    RayclError unless allow_insecure_local_ray() / $RAYCL_INSECURE_LOCAL_RAY=1 opted in.
    Calling it again when Ray is already up is a no-op.
    """
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs.setdefault("log_to_driver", True)
    kwargs.setdefault("configure_logging", True)
    if address not in LOCAL_ADDRESSES:
        if _is_loopback(address):
            # a cluster whose nodes listen on 127.0.0.1 only (several nodes on one machine):
            # connect there, not to the machine's own address, where nothing listens
            with _loopback_stays_loopback():
                return ray.init(address=address, **kwargs)
        return ray.init(address=address, **kwargs)
    # "local": never attach to whatever /tmp/ray/ray_current_cluster names (on a shared machine,
    # another user's `ray start`, or a dead cluster)
    _enforce_token_auth()
    return _start_local(ray, num_cpus, num_gpus, kwargs)
