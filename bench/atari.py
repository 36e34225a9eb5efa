"""Environment frames per second of asynchronous A3C on Ray, W = 1 and 2 workers.

    PYTHONPATH=. python bench/atari.py [--frames 4000] [--game Pong] [--num-cpus 2]

A frame is one environment step (ALE v5: 4 emulator frames). For each W, and with the
workers waiting for the server's reply (`sync`) or playing on while it applies (`pipeline`),
it trains a fresh network for --frames frames and prints one JSON line with:
  startup_s     actor start-up: worker processes, torch import, networks, emulators
  steady_fps    frames / seconds from the moment every worker is up to the end
  wall_fps      frames / wall time including start-up (short runs are mostly start-up)
  ms_per_frame  the workers' busy time per frame: rollout (forward + emulator), gradient
                (backward + clip), sync (loading weights + waiting for the server)
  speedup       steady_fps of W=2 over W=1, per mode
"""

import argparse
import json
import os
import time

import torch


def measure(ray_a3c, game: str, frames: int, workers: int, pipeline: bool) -> dict:
    from raycl.atari.a3c import A3CConfig

    reports, ready = [], []
    t0 = time.perf_counter()
    _, _, total = ray_a3c.train(game, A3CConfig(pipeline=pipeline), frames, workers, seed=workers, chunk=200,
                                on_chunk=lambda r, t: reports.append(r),
                                on_ready=lambda: ready.append(time.perf_counter()))
    end = time.perf_counter()
    played = sum(r["frames"] for r in reports)
    busy = {k: round(1000 * sum(r["busy"][k] for r in reports) / played, 3) for k in reports[0]["busy"]}
    return {"startup_s": round(ready[0] - t0, 1), "steady_fps": round(total / (end - ready[0]), 1),
            "wall_fps": round(total / (end - t0), 1), "frames": total, "ms_per_frame": busy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=4000)
    ap.add_argument("--game", default="Pong")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--modes", default="sync,pipeline")
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()

    from raycl.atari.parallel import RayA3C

    torch.set_num_threads(1)
    ray_a3c = RayA3C(num_cpus=args.num_cpus)
    workers = [int(x) for x in args.workers.split(",")]
    for mode in args.modes.split(","):
        out = {"bench": "atari", "mode": mode, "game": args.game, "cpus": os.cpu_count(), "torch": torch.__version__}
        for w in workers:
            out[f"W{w}"] = measure(ray_a3c, args.game, args.frames, w, pipeline=mode == "pipeline")
        if len(workers) == 2:
            out["speedup"] = round(out[f"W{workers[1]}"]["steady_fps"] / out[f"W{workers[0]}"]["steady_fps"], 2)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
