"""Seconds to fold one more 21,840-parameter task network into the Self-Net store at
cosine >= 0.997 for every stored network, on CPU, as the store grows to 20 networks (buffer of 1). One JSON line.

The networks are real: MNIST task networks trained on Split tuples of the offline digits
(the first from a seeded init, the rest fine-tuned from it, λ·MSE anchor). Training them is
not timed; only `SelfNet.add` (recollect, retrain the AE to the threshold, re-encode) is.
The AE codes differences from its decoder's bias (residual coding; `--no-residual` for raw).
After the last fold it also reports every recollection's cosine to its original and its
accuracy: the threshold holds against each fold's recollections, and errors accumulate.

    PYTHONPATH=. python bench/selfnet.py [--networks 20] [--latent 20] [--decoder-hidden ""]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--latent", type=int, default=20, help="s (the Permuted-MNIST AE's latent size)")
    ap.add_argument("--decoder-hidden", default="", help="comma list of decoder hidden sizes (default none)")
    ap.add_argument("--activation", default="elu")
    ap.add_argument("--threshold", type=float, default=0.997)
    ap.add_argument("--stop", choices=("min", "mean"), default="min",
                    help="min: every stored network (the new one too) at >= threshold; mean: Algorithm 1's average")
    ap.add_argument("--ae-lr", type=float, default=3e-3)
    ap.add_argument("--contractive", type=float, default=1e-6, help="λ of the Jacobian penalty (text: 1e-4)")
    ap.add_argument("--max-iters", type=int, default=5000)
    ap.add_argument("--no-residual", dest="residual", action="store_false",
                    help="code raw networks (the old AE), not differences from the decoder's learned bias")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from raycl.selfnet.store import NetMeta, SelfNet
    from raycl.selfnet.streams import load_pair, make_stream
    from raycl.selfnet.ae import cosine
    from raycl.selfnet.train import TaskNetConfig, accuracy_of_flat, train_task_network

    tasks = make_stream("split", *load_pair("digits"), args.networks, seed=args.seed)
    first, tune = TaskNetConfig(15, 32, 0.02, 0.9), TaskNetConfig(10, 32, 0.01, 0.5)
    source, acc0 = train_task_network(tasks[0], "mnist", 10, first, seed=args.seed)
    trained = [(source, acc0)] + [train_task_network(t, "mnist", 10, tune, init=source, source=source, seed=args.seed + i)
                                  for i, t in enumerate(tasks[1:], 1)]
    nets = [f for f, _ in trained]
    dec = tuple(int(x) for x in args.decoder_hidden.split(",") if x.strip())
    sn = SelfNet(21_840, args.latent, (), args.activation, buffer_size=1, thresholds=(args.threshold,),
                 lam=args.contractive, lr=args.ae_lr, max_iters=args.max_iters, stop=args.stop, device="cpu",
                 seed=args.seed, decoder_hidden=dec, residual=args.residual)
    seconds, iters, reached, newest = [], [], [], []
    for i, flat in enumerate(nets):
        t0 = time.perf_counter()
        fit = sn.add(f"t{i}", flat, NetMeta("mnist", 10, flat.numel()))
        seconds.append(round(time.perf_counter() - t0, 4))
        iters.append(fit.iterations)
        reached.append(fit.reached)
        newest.append(round(fit.cosines[-1], 5))
        print(f"fold {i + 1}: {seconds[-1]:.2f} s, {fit.iterations} AE updates, reached {fit.reached}",
              file=sys.stderr, flush=True)
    st = sn.storage()
    # after the last fold, against the originals (each fold's cosines are against recollections)
    recs = [sn.recollect(f"t{i}") for i in range(len(nets))]
    to_orig = [cosine(r, f) for r, f in zip(recs, nets)]
    rec_acc = [accuracy_of_flat("mnist", 10, r, t) for r, t in zip(recs, tasks)]
    print(json.dumps({
        "bench": "selfnet_fold", "device": "cpu", "threads": args.threads, "cpu": platform.processor() or platform.machine(),
        "network_params": 21_840, "latent": args.latent, "decoder_hidden": list(dec), "threshold": args.threshold,
        "stop": args.stop, "contractive": args.contractive, "residual": args.residual,
        "fold_seconds": seconds, "fold_ae_updates": iters, "newest_cosine": newest, "all_reached_threshold": all(reached),
        "seconds_fold_20th": seconds[-1], "seconds_mean": round(sum(seconds) / len(seconds), 4),
        "seconds_total": round(sum(seconds), 3), "final_mean_cosine": round(sum(fit.cosines) / len(fit.cosines), 5),
        "final_min_cosine": round(min(fit.cosines), 5),
        "min_cosine_to_originals": round(min(to_orig), 5), "mean_cosine_to_originals": round(sum(to_orig) / len(to_orig), 5),
        "mean_original_acc": round(sum(a for _, a in trained) / len(trained), 4),
        "mean_recollected_acc": round(sum(rec_acc) / len(rec_acc), 4),
        "ae_params": st["ae_params"], "storage_ratio": round(st["storage_ratio"], 4),
    }))


if __name__ == "__main__":
    main()
