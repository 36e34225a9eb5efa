"""One model's hyper-step, in this process and inside a Ray actor: where does the worker's time go?

The Ray population's step is the slowest worker's compute plus synchronisation. This bench
takes synchronisation out: one SynapseWorker steps its model --steps times with a fixed φ (the
φ object is put once), and the compute seconds the worker measures around `advance` are
compared with the same steps of the same model (same θ0, stream and generator) run here, and
with the same steps sent one call at a time, as the phenotype server sends them. Each
variant of the actor's settings (environment variables given to its worker process) gets a
fresh actor. With --profile it also prints torch.profiler's top operators for both.

    PYTHONPATH=. python bench/worker_step.py                      # 10M synapse parameters
    PYTHONPATH=. python bench/worker_step.py --profile --steps 20
    PYTHONPATH=. python bench/worker_step.py --variant MALLOC_ARENA_MAX=1

Prints one JSON line: per variant the median step (ms) with its quartiles (`median`, `q1`, `q3`), and the ratio to
in-process. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from raycl.data import load  # noqa: E402
from raycl.hyper.config import preset  # noqa: E402
from raycl.hyper.models import build_model  # noqa: E402
from raycl.hyper.synapses import SynapseState, advance, begin_epoch, model_generator  # noqa: E402
from raycl.hyper.stream import prepare_pool  # noqa: E402
from raycl.stats import quartiles  # noqa: E402


def in_process(cfg, pool, theta0, phi, steps: int, profile: bool) -> tuple[list[float], str]:
    model = build_model(cfg)[0]
    state = SynapseState(0, theta0, model_generator(cfg.seed, 0))
    begin_epoch(state, pool, cfg, theta0)
    ms = []
    for step in range(steps):
        t = time.perf_counter()
        advance(model, cfg, state, phi, step)
        ms.append(1e3 * (time.perf_counter() - t))
    table = ""
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        with prof(activities=[ProfilerActivity.CPU]) as p:
            advance(model, cfg, state, phi, steps)
        table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return ms[1:], table  # the first step pays the allocator's first touches


class ProfiledWorker:
    """A SynapseWorker that can also profile one step (bench only)."""

    def __init__(self, *args):
        from raycl.population.actors import SynapseWorker

        self.worker = SynapseWorker(*args)

    def environment(self) -> dict:
        return {"pid": os.getpid(), "nice": os.nice(0), "threads": torch.get_num_threads(),
                "affinity": sorted(os.sched_getaffinity(0)),
                **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}}

    def begin(self):
        self.worker.at, self.worker.begun = (0, 0), False
        self.worker.begin_epoch(0)

    def one(self, phi, step: int) -> float:
        """One step a call, as the server drives them (phi comes packed)."""
        return 1e3 * self.worker.advance(phi, 0, step)[1]

    def run(self, phi, steps: int, profile: bool):
        self.worker.at, self.worker.begun = (0, 0), False
        self.worker.begin_epoch(0)
        phi = self.worker.wire.pack(phi)  # as the server sends it
        ms = [1e3 * self.worker.advance(phi, 0, step)[1] for step in range(steps)]
        table = ""
        if profile:
            from torch.profiler import ProfilerActivity, profile as prof

            with prof(activities=[ProfilerActivity.CPU]) as p:
                self.worker.advance(phi, 0, steps)
            table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
        return ms[1:], table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=1e7, help="synapse parameters of the model")
    ap.add_argument("--steps", type=int, default=40, help="hyper-steps per measurement (the first is left out)")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per variant, alternating with in-process")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=VALUE[,NAME=VALUE] environment of the actor's worker process; repeatable "
                         "(the default variant, Ray's own environment, always runs)")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's top operators for one step")
    ap.add_argument("--glibc-default", action="store_true",
                    help="leave glibc's allocator as it is here (raycl's workers keep their heap, raycl.host)")
    args = ap.parse_args(argv)
    if not args.glibc_default:
        from raycl.host import keep_heap

        keep_heap()

    import ray

    from raycl.cluster import init_ray
    from raycl.population.actors import FlatParams

    torch.set_num_threads(1)
    init_ray(num_cpus=os.cpu_count())
    pool = prepare_pool(load("digits"), 28)
    size = int(args.size)
    k = 4 if size >= 5_000_000 else 10  # as bench/population.py
    h_cl = -(-(args.steps + 1) // k)
    cfg = preset("default", source="digits", image_size=28, target_params=size, population=1,
                 h_cl=h_cl, h_h=h_cl + 2, holdout=2, k=k, epochs=1)
    model, theta0, phi = build_model(cfg)
    variants = {"ray default": {}}
    for v in args.variant:
        variants[v] = dict(kv.split("=", 1) for kv in v.split(","))
    remote = ray.remote(ProfiledWorker)
    phi_ref = ray.put(phi)
    out = {"bench": "worker_step", "synapse_params": sum(t.numel() for t in theta0.values()), "steps": args.steps,
           "load_avg_1m": os.getloadavg()[0],
           "here": {"nice": os.nice(0), "threads": torch.get_num_threads(), "keep_heap": not args.glibc_default}}
    here_ms, rows = [], {}
    for name, env in variants.items():
        actor = remote.options(num_cpus=1, runtime_env={"env_vars": env} if env else None).remote(
            cfg.to_dict(), 0, pool, theta0, 1)
        rows[name] = {"environment": ray.get(actor.environment.remote()), "ms": []}
        per_call = rows[f"{name}, one call a step"] = {"ms": []}
        packed = FlatParams(phi).pack(phi)
        for _ in range(args.repeats):  # alternate, so that drift hits all alike
            ms, _ = in_process(cfg, pool, theta0, phi, args.steps, False)
            here_ms += ms
            ms, _ = ray.get(actor.run.remote(phi_ref, args.steps, False))
            rows[name]["ms"] += ms
            ray.get(actor.begin.remote())
            per_call["ms"] += [ray.get(actor.one.remote(packed, step)) for step in range(args.steps)][1:]
        if args.profile:
            _, table = ray.get(actor.run.remote(phi_ref, args.steps, True))
            print(f"## torch.profiler, one step inside the actor ({name})\n{table}", file=sys.stderr)
        ray.kill(actor)
    if args.profile:
        print(f"## torch.profiler, one step in-process\n{in_process(cfg, pool, theta0, phi, 2, True)[1]}",
              file=sys.stderr)
    out["in_process"] = quartiles(here_ms, 2)
    for name, r in rows.items():
        r.update(quartiles(r.pop("ms"), 2))
        r["ratio_to_in_process"] = round(r["median"] / out["in_process"]["median"], 3)
    out["actor"] = rows
    print(json.dumps(out))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
