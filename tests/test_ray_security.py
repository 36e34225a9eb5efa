"""The local Ray that raycl starts: token authentication enforced, listeners on loopback only."""

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raycl import RayclError
from raycl import cluster


def _descendants(root: int) -> set[int]:
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:  # the command name may hold spaces and parentheses: ppid follows the last ")"
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = {root}, [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in found]
        found.update(kids)
        todo.extend(kids)
    return found


def _listen_sockets() -> dict[int, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket, from /proc/net/tcp{,6}."""
    out = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A":  # LISTEN
                continue
            hexip, hexport = f[1].split(":")
            raw = bytes.fromhex(hexip)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out[int(f[9])] = (str(ipaddress.ip_address(raw)), int(hexport, 16))
    return out


def ray_listeners() -> list[tuple[int, str, str, int]]:
    """(pid, process name, address, port) of the TCP listeners of this process and its descendants."""
    socks = _listen_sockets()
    rows = []
    for pid in _descendants(os.getpid()):
        try:
            comm = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in socks:
                    rows.append((pid, os.path.basename(comm), *socks[inode]))
    return rows


def is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def test_auth_disabled_without_opt_in_refused_before_starting(monkeypatch):
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv(cluster.INSECURE_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # even if another test left Ray up
    before = _descendants(os.getpid())
    with pytest.raises(RayclError, match="RAY_AUTH_MODE=disabled.*--insecure-local-ray") as e:
        cluster.init_ray(num_cpus=1)
    assert "\n" not in str(e.value)
    assert _descendants(os.getpid()) <= before  # no GCS, raylet or anything else started
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


def test_opt_in_lets_auth_disabled_through(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv(cluster.INSECURE_ENV, "0")  # restored (unset) after the test
    assert not cluster.insecure_local_ray_allowed()
    cluster.allow_insecure_local_ray()
    assert os.environ[cluster.INSECURE_ENV] == "1"
    cluster._enforce_token_auth()  # no error; the user's choice is left as it is
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


@pytest.fixture(scope="module")
def local_ray():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS", cluster.INSECURE_ENV)}
    for k in saved:
        os.environ.pop(k, None)
    try:
        cluster.init_ray(num_cpus=1)
        assert ray.get(ray.remote(lambda: 1).remote()) == 1
        yield ray
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_local_ray_requires_token(local_ray):
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert get_authentication_mode() == AuthenticationMode.TOKEN
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        assert cluster.default_token_path().stat().st_mode & 0o077 == 0  # only the owner reads it


CLIENT = r"""
import sys, grpc
from ray.core.generated import gcs_service_pb2 as pb, gcs_service_pb2_grpc as pbg
from ray.core.generated import node_manager_pb2 as npb, node_manager_pb2_grpc as npbg
gcs, raylet, token = sys.argv[1], sys.argv[2], sys.argv[3]
md = [("authorization", "Bearer " + token)] if token else None
def gcs_call():
    stub = pbg.NodeInfoGcsServiceStub(grpc.insecure_channel(gcs))
    stub.GetAllNodeInfo(pb.GetAllNodeInfoRequest(), timeout=20, metadata=md)
def raylet_call():
    stub = npbg.NodeManagerServiceStub(grpc.insecure_channel(raylet))
    stub.GetNodeStats(npb.GetNodeStatsRequest(), timeout=20, metadata=md)
def ray_client():  # Ray's own GCS client, token taken from this process's environment
    from ray._raylet import GcsClient
    GcsClient(address=gcs).internal_kv_keys(b"", namespace=None, timeout=20)
for name, f in (("gcs", gcs_call), ("raylet", raylet_call), ("ray_client", ray_client)):
    try:
        f()
        print(name, "OK")
    except grpc.RpcError as e:
        print(name, e.code().name)
    except Exception as e:
        print(name, type(e).__name__)
"""


def _client(args, env):
    r = subprocess.run([sys.executable, "-c", CLIENT, *args], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return dict(line.split() for line in r.stdout.splitlines())


def test_client_without_token_is_refused(local_ray, tmp_path):
    ray = local_ray
    gcs = ray._private.worker._global_node.gcs_address
    node = ray.nodes()[0]
    raylet = f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to find

    no_token = _client([gcs, raylet, ""], {**env, "RAY_AUTH_MODE": "disabled"})
    assert no_token == {"gcs": "UNAUTHENTICATED", "raylet": "UNAUTHENTICATED", "ray_client": "AuthenticationError"}
    wrong = _client([gcs, raylet, "0" * 64], {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
    assert wrong == {"gcs": "UNAUTHENTICATED", "raylet": "UNAUTHENTICATED", "ray_client": "AuthenticationError"}
    # control: the same calls with the cluster's token succeed, so the refusals are the token's doing
    token = os.environ.get("RAY_AUTH_TOKEN") or Path(
        os.environ.get("RAY_AUTH_TOKEN_PATH") or cluster.default_token_path()).read_text().strip()
    right = _client([gcs, raylet, token], {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    assert right == {"gcs": "OK", "raylet": "OK", "ray_client": "OK"}


def test_local_ray_listens_on_loopback_only(local_ray):
    ray = local_ray
    rows = ray_listeners()
    names = {name for _, name, _, _ in rows}
    assert {"gcs_server", "raylet"} <= names, rows  # the scan does see Ray's servers
    exposed = [r for r in rows if not is_loopback(r[2])]
    assert exposed == [], f"Ray listens beyond loopback: {exposed}"
    # GCS and raylet addresses are loopback too (clients are told 127.0.0.1, not the machine's address)
    assert ray._private.worker._global_node.node_ip_address == "127.0.0.1"
    # the dashboard agent's Prometheus exporter is off (RayConfig enable_metrics_collection=False)
    port = ray.nodes()[0].get("MetricsExportPort")
    assert not port or port not in {p for *_, p in rows}, (port, rows)
