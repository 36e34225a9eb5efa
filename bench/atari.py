"""Environment frames per second of asynchronous A3C on Ray, per worker and in total, W = 1, 2.

    PYTHONPATH=. python bench/atari.py [--frames 2000] [--game Pong] [--num-cpus 2]

A frame is one environment step (ALE v5: 4 emulator frames). Each W trains a fresh network
for --frames frames; per-worker fps = a worker's frames / its busy seconds (rollout, gradient,
push, pull), total fps = all frames / wall time of the run (includes actor start-up, ~10 s here).
Prints one JSON line.
"""

import argparse
import json
import os
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--game", default="Pong")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()

    from raycl.atari.a3c import A3CConfig
    from raycl.atari.parallel import RayA3C

    torch.set_num_threads(1)
    ray_a3c = RayA3C(num_cpus=args.num_cpus)
    out = {"bench": "atari", "game": args.game, "frames": args.frames, "cpus": os.cpu_count(),
           "torch": torch.__version__}
    for w in (int(x) for x in args.workers.split(",")):
        reports = []
        t0 = time.perf_counter()
        _, _, total = ray_a3c.train(args.game, A3CConfig(), args.frames, w, seed=w, chunk=100,
                                    on_chunk=lambda r, t: reports.append(r))
        wall = time.perf_counter() - t0
        busy = sum(r["seconds"] for r in reports)
        out[f"W{w}"] = {"total_fps": round(total / wall, 1),
                        "per_worker_fps": round(sum(r["frames"] for r in reports) / busy, 1),
                        "frames": total, "wall_s": round(wall, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
