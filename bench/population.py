"""Sequential reference vs the Ray population, same configuration, per synaptic step.

For each model size (synapse parameters per model) and population M it runs the reference
trainer and the Ray trainer (and with --packed the packed one) for 1 + --repeats outer epochs,
taking turns epoch by epoch. The first epoch warms up and is left out; every other epoch is one
measurement: its mean step time (the epoch's first two steps left out). Epoch i of the
reference and epoch i of Ray, run one after the other, make one speed-up sample. Prints one
JSON line with, per size and M, the median and quartiles over the measured epochs of:
speed-up (reference step / Ray step),
Ray's per-step synchronisation in ms and as a share of the step's compute (critical path:
slowest worker + φ update), the per-model compute in each backend (contention for cores), and the
floor of Ray's synchronisation: the same calls with no compute.

    PYTHONPATH=. python bench/population.py                       # 0.4M and 10M, M = 1, 2
    PYTHONPATH=. python bench/population.py --sizes 4e5 --populations 1,2,4 --k 20
    PYTHONPATH=. python bench/population.py --gpus-per-worker 0.5  # on a GPU box: M workers share a card
    PYTHONPATH=. python bench/population.py --packed              # also the packed trainer (M models vmapped)
"""

from __future__ import annotations

import argparse
import contextlib
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
from raycl.stats import quartiles  # noqa: E402


def steady(trace: dict) -> dict:
    """Means over one traced epoch's steps, the first two left out (they sample the
    hyper-streams and, in a freshly started actor, fill its heap)."""
    cut = slice(2, None) if len(trace["wall_s"]) > 2 else slice(None)
    mean = lambda xs: statistics.fmean(xs[cut])  # noqa: E731
    return {"step_ms": 1e3 * mean(trace["wall_s"]), "compute_ms": 1e3 * mean(trace["compute_s"]),
            "sync_ms": 1e3 * mean(trace["sync_s"]),
            "model_compute_ms": [1e3 * mean(m) for m in trace["model_compute_s"]]}


def measure(trainers: dict, epochs: int) -> dict:
    """Train every trainer `epochs` epochs, taking turns epoch by epoch (so that a slow spell of
    the machine hits all of them alike); the steady figures of every epoch after the first.
    RayTrainer's actors stay up between its turns, as in one run."""
    traces = {name: [] for name in trainers}
    for name, trainer in trainers.items():
        keep = trainer.set_trace

        def record(reports, phenotype, trainer=trainer, keep=keep, out=traces[name]):
            keep(reports, phenotype)
            out.append(steady(trainer.last_trace))

        trainer.set_trace = record
    with contextlib.ExitStack() as held:
        for trainer in trainers.values():
            if hasattr(trainer, "started"):
                held.enter_context(trainer.started())
        for epoch in range(1, epochs + 1):
            for trainer in trainers.values():
                trainer.train(epoch, progress=False)
    return {name: t[1:] for name, t in traces.items()}


def summary(epochs: list[dict]) -> dict:
    m = len(epochs[0]["model_compute_ms"])
    return {"step_ms": quartiles([e["step_ms"] for e in epochs], 1),
            "compute_ms": quartiles([e["compute_ms"] for e in epochs], 1),
            "sync_ms": quartiles([e["sync_ms"] for e in epochs], 2),
            "model_compute_ms": [quartiles([e["model_compute_ms"][i] for e in epochs], 1)["median"] for i in range(m)]}


def chain_floor_ms(m: int, n: int = 200) -> float:
    """Ray's own cost of one step with no compute: the same calls as RayTrainer's (the server
    sends the packed φ to M workers and gathers their packed gradients)."""
    import numpy as np
    import ray

    @ray.remote(num_cpus=0)
    class Worker:
        def advance(self, phi, epoch, step):
            return {"phi": phi * 0, "theta0": None}, 0.0

    @ray.remote(num_cpus=0)
    class Server:
        def run(self, workers, steps):
            phi = np.zeros(424, dtype=np.float32)
            for step in range(steps):
                ray.get([w.advance.remote(phi, 0, step) for w in workers])

    ws, s = [Worker.remote() for _ in range(m)], Server.remote()
    ray.get(s.run.remote(ws, 10))
    t = time.perf_counter()
    ray.get(s.run.remote(ws, n))
    ms = 1e3 * (time.perf_counter() - t) / n
    for a in [s, *ws]:
        ray.kill(a)
    return ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4e5,1e7", help="synapse parameters per model, comma-separated")
    ap.add_argument("--populations", default="1,2", help="M values, comma-separated")
    ap.add_argument("--repeats", type=int, default=5,
                    help="measured epochs per backend, after one warm-up epoch; the figures are medians over them")
    ap.add_argument("--k", type=int, default=0, help="synaptic steps per task (0: 10 for small models, 4 for >= 5M)")
    ap.add_argument("--h-cl", type=int, default=6, help="continual-learning tasks per stream")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--gpus-per-worker", type=float, default=1.0)
    ap.add_argument("--skip-reference", action="store_true", help="Ray only (no speed-up)")
    ap.add_argument("--glibc-default", action="store_true",
                    help="leave glibc's allocator as it is in this process (the reference's and the packed trainer's); "
                         "raycl's commands and workers keep their heap (raycl.host)")
    ap.add_argument("--packed", action="store_true",
                    help="also time the packed trainer (the M models stacked in one process, on the GPU when there "
                         "is one) and its speed-up over the reference")
    args = ap.parse_args(argv)

    import ray

    from raycl.cluster import init_ray
    from raycl.population import PackedTrainer, RayTrainer

    torch.set_num_threads(1)
    if not args.glibc_default:
        from raycl.host import keep_heap

        keep_heap()
    t0 = time.perf_counter()
    init_ray(num_cpus=os.cpu_count())
    ray_init_s = time.perf_counter() - t0
    pool = prepare_pool(load("digits"), args.image_size)
    results = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        k = args.k or (4 if size >= 5_000_000 else 10)
        for m in [int(x) for x in args.populations.split(",")]:
            cfg = preset("default", source="digits", image_size=args.image_size, target_params=size, population=m,
                         h_cl=args.h_cl, h_h=args.h_cl + 2, holdout=2, k=k, epochs=1 + args.repeats)
            row = {"target_params": size, "M": m, "steps_per_epoch": cfg.h_cl * cfg.k}
            trainers = {}
            if not args.skip_reference:
                trainers["reference"] = ReferenceTrainer(cfg, pool=pool)
                row["synapse_params"] = sum(t.numel() for t in trainers["reference"].theta0.values())
                row["phenotype_params"] = sum(t.numel() for t in trainers["reference"].phi0.values())
            if args.packed:
                trainers["packed"] = PackedTrainer(cfg, pool=pool)
                row["packed_device"] = str(trainers["packed"].device)
            trainers["ray"] = RayTrainer(cfg, pool=pool, gpus_per_model=args.gpus_per_worker)
            row["ray_chain_floor_ms"] = round(chain_floor_ms(m), 2)
            epochs = measure(trainers, 1 + args.repeats)
            for name, per_epoch in epochs.items():
                row[name] = summary(per_epoch)
            row["sync_share_of_compute"] = quartiles([e["sync_ms"] / e["compute_ms"] for e in epochs["ray"]])
            for name, key in (("ray", "speedup"), ("packed", "packed_speedup")):
                if "reference" in epochs and name in epochs:
                    row[key] = quartiles([r["step_ms"] / e["step_ms"] for r, e in zip(epochs["reference"], epochs[name])])
            results.append(row)
            print(f"# {size:.1e} params, M={m}: " + json.dumps(row), file=sys.stderr, flush=True)
    out = {
        "bench": "population", "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "repeats": args.repeats,
        "keep_heap_in_process": not args.glibc_default,
        "gpus": ray.cluster_resources().get("GPU", 0), "torch_threads_per_process": 1,
        "ray_init_s": round(ray_init_s, 2), "results": results,
    }
    print(json.dumps(out))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
