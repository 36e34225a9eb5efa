"""Sequential reference vs the Ray population, same configuration, per synaptic step.

For each model size (synapse parameters per model) and population M it runs the reference
trainer and the Ray trainer for --epochs outer epochs and measures the last epoch's steps
(its first step, which also samples the hyper-streams, left out). Prints one JSON line:
speed-up (reference step time / Ray step time), Ray's per-step synchronisation overhead in
ms and as a share of the step's compute (critical path: slowest worker + φ update), the
per-model compute in each backend, which shows contention for cores, and the floor of
Ray's synchronisation: the same call chain with no compute.

    PYTHONPATH=. python bench/population.py                       # 0.4M and 10M, M = 1, 2
    PYTHONPATH=. python bench/population.py --sizes 4e5 --populations 1,2,4 --k 20
    PYTHONPATH=. python bench/population.py --gpus-per-model 0.5  # on a GPU box: M workers share a card
    PYTHONPATH=. python bench/population.py --packed              # also the packed trainer (M models vmapped)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from raycl.data import load  # noqa: E402
from raycl.hyper.config import preset  # noqa: E402
from raycl.hyper.stream import prepare_pool  # noqa: E402
from raycl.hyper.trainer import ReferenceTrainer  # noqa: E402


def steady(trace: dict) -> dict:
    """Means over the traced epoch's steps, the first one left out."""
    cut = slice(1, None) if len(trace["wall_s"]) > 1 else slice(None)
    mean = lambda xs: statistics.fmean(xs[cut])  # noqa: E731
    return {"step_ms": 1e3 * mean(trace["wall_s"]), "compute_ms": 1e3 * mean(trace["compute_s"]),
            "sync_ms": 1e3 * mean(trace["sync_s"]),
            "model_compute_ms": [round(1e3 * mean(m), 2) for m in trace["model_compute_s"]]}


def chain_floor_ms(m: int, n: int = 200) -> float:
    """Ray's own cost of one step with no compute: the same call chain as RayTrainer (M
    workers take φ's ref, the server takes their M refs and returns the next φ)."""
    import ray

    @ray.remote(num_cpus=0)
    class Worker:
        def advance(self, phi):
            return {k: v * 0 for k, v in phi.items()}, 0.0

    @ray.remote(num_cpus=0)
    class Server:
        def step(self, *results):
            return {"w": torch.zeros(424)}

    ws, s = [Worker.remote() for _ in range(m)], Server.remote()
    phi = s.step.remote()
    ray.get(phi)
    t = time.perf_counter()
    for _ in range(n):
        phi = s.step.remote(*[w.advance.remote(phi) for w in ws])
    ray.get(phi)
    ms = 1e3 * (time.perf_counter() - t) / n
    for a in [s, *ws]:
        ray.kill(a)
    return ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4e5,1e7", help="synapse parameters per model, comma-separated")
    ap.add_argument("--populations", default="1,2", help="M values, comma-separated")
    ap.add_argument("--epochs", type=int, default=2, help="outer epochs per run; the last one is measured")
    ap.add_argument("--k", type=int, default=0, help="synaptic steps per task (0: 10 for small models, 4 for >= 5M)")
    ap.add_argument("--h-cl", type=int, default=3, help="continual-learning tasks per stream")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--gpus-per-model", type=float, default=1.0)
    ap.add_argument("--skip-reference", action="store_true", help="Ray only (no speed-up)")
    ap.add_argument("--packed", action="store_true",
                    help="also time the packed trainer (the M models stacked in one process, on the GPU when there "
                         "is one) and its speed-up over the reference")
    args = ap.parse_args(argv)

    import ray

    from raycl.cluster import init_ray
    from raycl.population import PackedTrainer, RayTrainer

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    init_ray(num_cpus=os.cpu_count())
    ray_init_s = time.perf_counter() - t0
    pool = prepare_pool(load("digits"), args.image_size)
    results = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        k = args.k or (4 if size >= 5_000_000 else 10)
        for m in [int(x) for x in args.populations.split(",")]:
            cfg = preset("default", source="digits", image_size=args.image_size, target_params=size, population=m,
                         h_cl=args.h_cl, h_h=args.h_cl + 2, holdout=2, k=k, epochs=args.epochs)
            row = {"target_params": size, "M": m, "steps_per_epoch": cfg.h_cl * cfg.k}
            if not args.skip_reference:
                ref = ReferenceTrainer(cfg, pool=pool)
                row["synapse_params"] = sum(t.numel() for t in ref.theta0.values())
                row["phenotype_params"] = sum(t.numel() for t in ref.phi0.values())
                ref.train(progress=False)
                row["reference"] = steady(ref.last_trace)
            if args.packed:
                pk = PackedTrainer(cfg, pool=pool)
                row["packed_device"] = str(pk.device)
                pk.train(progress=False)
                row["packed"] = steady(pk.last_trace)
                if "reference" in row:
                    row["packed_speedup"] = row["reference"]["step_ms"] / row["packed"]["step_ms"]
            row["ray_chain_floor_ms"] = chain_floor_ms(m)
            rt = RayTrainer(cfg, pool=pool, gpus_per_model=args.gpus_per_model)
            t = time.perf_counter()
            rt.train(progress=False)
            row["ray_train_s"] = time.perf_counter() - t  # actor start-up included
            r = steady(rt.last_trace)
            row["ray"] = r
            row["sync_share_of_compute"] = r["sync_ms"] / r["compute_ms"]
            if "reference" in row:
                row["speedup"] = row["reference"]["step_ms"] / r["step_ms"]
            results.append(row)
            print(f"# {size:.1e} params, M={m}: " + json.dumps(row), file=sys.stderr, flush=True)
    out = {
        "bench": "population", "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "gpus": ray.cluster_resources().get("GPU", 0), "torch_threads_per_process": 1,
        "ray_init_s": round(ray_init_s, 2), "results": results,
    }
    print(json.dumps(out))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
