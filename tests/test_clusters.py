"""clusters/: the cluster-launcher YAMLs pass Ray's own validation (the JSON schema
ray-schema.json plus its checks, after Ray fills in its defaults as `ray up` does); the
KubeRay RayJob has the structure the operator needs (Ray ships no schema for it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CLUSTERS = Path(__file__).resolve().parents[1] / "clusters"


def ray_validated(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((CLUSTERS / name).read_text()))
    validate_config(config)
    return config


def test_aws_gpu_cluster_is_valid_and_sized_for_a_population():
    config = ray_validated("aws-gpu.yaml")
    assert config["provider"]["type"] == "aws"
    workers = {k: v for k, v in config["available_node_types"].items() if k != config["head_node_type"]}
    gpus = sum(v["resources"].get("GPU", 0) * v["max_workers"] for v in workers.values())
    assert gpus >= 5  # §6.4.5: a population of 5 models, one GPU each
    assert any("pip install" in c and "raycl" in c for c in config["setup_commands"])
    assert all("RAY_AUTH_MODE=token" in c for c in config["head_start_ray_commands"] if "ray start" in c)


def test_onprem_cluster_is_valid():
    config = ray_validated("onprem.yaml")
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    assert any("pip install" in c and "raycl" in c for c in config["setup_commands"])


def test_validation_catches_a_broken_cluster_yaml():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTERS / "aws-gpu.yaml").read_text())
    config["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        validate_config(prepare_config(config))
    config = yaml.safe_load((CLUSTERS / "aws-gpu.yaml").read_text())
    config["max_workers"] = "many"
    with pytest.raises(Exception, match="'many' is not of type 'integer'") as e:
        validate_config(prepare_config(config))
    assert list(e.value.path) == ["max_workers"]  # the schema error points at the field


def test_kuberay_rayjob_structure():
    job = yaml.safe_load((CLUSTERS / "kuberay-rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("python jobs/") and (CLUSTERS.parent / spec["entrypoint"].split()[1]).exists()
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0" and cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and head["resources"]["limits"]
    groups = cluster["workerGroupSpecs"]
    for g in groups:
        assert {"groupName", "replicas", "rayStartParams", "template"} <= set(g)
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        for c in g["template"]["spec"]["containers"]:
            assert c["name"] and c["image"] and c["resources"]["limits"]
    gpus = sum(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) * g["replicas"]
               for g in groups for c in g["template"]["spec"]["containers"])
    assert gpus >= 5
