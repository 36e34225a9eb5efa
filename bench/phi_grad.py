"""What each way of taking the phenotype's gradient costs, per outer epoch, in one process.

For the preset's population and stream it times whole hyper-training epochs (the reference
trainer, one torch thread) for each form:
  first-order     a φ step per synaptic step, θ_{t+1} held constant
  through-update  a φ step per synaptic step, back through that one update
  through-task    a φ step per task, back through the task's k synaptic steps (one backward)
  window k        a φ step per synaptic step, back through the last k updates (--unroll k):
                  the same gradient as through-task at a task's last step, at k times the cost;
                  timed over --window-steps steps and scaled to an epoch
Prints one JSON line per form: seconds per epoch (median of --repeats, and all of them), φ
steps per epoch. Run it on an otherwise idle machine.

    PYTHONPATH=. python bench/phi_grad.py                  # default preset, 3 repeats
    PYTHONPATH=. python bench/phi_grad.py --preset tiny --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from raycl.hyper.config import preset  # noqa: E402
from raycl.hyper.trainer import ReferenceTrainer, meta_train_pool, steps_per_epoch  # noqa: E402


def epoch_seconds(cfg, pool, steps: int | None = None) -> float:
    """Wall seconds of one epoch (or of its first `steps` φ steps)."""
    trainer = ReferenceTrainer(cfg.with_(epochs=1), pool=pool)
    if steps is not None:  # a partial epoch, scaled to a whole one
        from raycl.hyper.synapses import advance, begin_epoch

        cfg_steps = trainer.n_steps
        t = time.perf_counter()
        for s in trainer.states:
            begin_epoch(s, pool, trainer.cfg, trainer.theta0)
        for step in range(steps):
            results = [advance(trainer.model, trainer.cfg, s, trainer.server.phi, step) for s in trainer.states]
            trainer.server.step([r.grad_phi for r in results])
        return (time.perf_counter() - t) * cfg_steps / steps
    t = time.perf_counter()
    trainer.train(progress=False)
    return time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--window-steps", type=int, default=30, help="steps timed for the window form")
    ap.add_argument("--lr-synapses", type=float, default=1e-2)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    base = preset(a.preset, lr_synapses=a.lr_synapses)
    pool = meta_train_pool(base)
    forms = {
        "first-order": (base, None),
        "through-update": (base.with_(phi_grad="through-update"), None),
        "through-task": (base.with_(phi_grad="through-task", hyper_loss_over="seen"), None),
        f"window {base.k}": (base.with_(phi_grad="through-update", unroll=base.k), a.window_steps),
    }
    for name, (cfg, steps) in forms.items():
        times = [epoch_seconds(cfg, pool, steps) for _ in range(a.repeats)]
        print(json.dumps({"form": name, "preset": a.preset, "seconds_per_epoch": round(statistics.median(times), 2),
                          "all": [round(t, 2) for t in times], "phi_steps_per_epoch": steps_per_epoch(cfg),
                          "scaled_from_steps": steps}), flush=True)


if __name__ == "__main__":
    main()
