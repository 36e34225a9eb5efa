"""Forward+backward time of a DAN network vs a dense tanh MLP with the same number of
synapse parameters vs the same DAN network evaluated with a Python loop over neurons.

Prints one JSON line. Usage: python bench/dan_layer.py [--batch 128] [--sizes 4e5,1e7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from raycl.dan import MLP, DANNetwork, count_parameters, width_for_params


def loop_forward(net: DANNetwork, x: torch.Tensor) -> torch.Tensor:
    """The per-neuron reference: every DAN's phenotype is called on its own slice."""
    acts = [x]
    for k, layer in enumerate(net.layers, start=1):
        skips = (acts[k - 2],) if layer.skip_in else ()
        z = layer.dan_input(acts[-1], skips)
        phen = layer.phenotype or net.phenotype
        acts.append(torch.cat([phen(z[:, i, :]) for i in range(layer.n_out)], dim=1))
    return net.head(acts[-1]) if net.head is not None else acts[-1]


def timeit(fn, device, reps: int, warmup: int = 2) -> float:
    """Median milliseconds of fn() (forward + backward)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def dense_width(target_synapses: int, input_dim: int, out: int, layers: int) -> int:
    """Equal hidden width of a tanh MLP whose parameter count is nearest target_synapses."""
    def n(h):
        return (input_dim + 1) * h + (layers - 1) * (h + 1) * h + (h + 1) * out

    lo, hi = 1, 1 << 17
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if n(mid) <= target_synapses else (lo, mid)
    return lo if target_synapses - n(lo) <= n(hi) - target_synapses else hi


def run_size(target: int, args, device) -> dict:
    kw = dict(input_dim=args.input_dim, output_dim=args.classes, n_channels=args.n_channels, sharing="net0",
              skips=False, readout="linear")
    h = width_for_params(target, 2, **kw)
    net = DANNetwork(args.input_dim, (h, h), args.classes, args.n_channels, "net0").to(device)
    n = count_parameters(net)
    hd = dense_width(n["theta"], args.input_dim, args.classes, 2)
    dense = MLP(args.input_dim, (hd, hd), args.classes).to(device)
    x = torch.randn(args.batch, args.input_dim, device=device)
    params = list(net.parameters())

    def step(model_fn, ps):
        def f():
            out = model_fn(x)
            grads = torch.autograd.grad(out.square().mean(), ps)
            return grads
        return f

    reps = args.reps
    dan_ms = timeit(step(net, params), device, reps)
    dense_ms = timeit(step(dense, list(dense.parameters())), device, reps)
    loop_ms = timeit(step(lambda v: loop_forward(net, v), params), device, max(2, reps // 4), warmup=1)
    # where the DAN time goes: the synapse products alone, and the phenotype alone
    syn = [(layer.weight, layer.bias) for layer in net.layers]
    xs = [x] + [torch.randn(args.batch, layer.n_out, device=device) for layer in net.layers[:-1]]

    def synapses_only():
        outs = [torch.addmm(b, xi, w) for (w, b), xi in zip(syn, xs)]
        return torch.autograd.grad(sum(o.square().mean() for o in outs), [p for wb in syn for p in wb])

    zs = [torch.randn(args.batch, layer.n_out, args.n_channels, device=device) for layer in net.layers]

    def phenotype_only():
        out = sum(net.phenotype(z).square().mean() for z in zs)
        return torch.autograd.grad(out, list(net.phenotype.parameters()))

    return {
        "target_params": target,
        "dan": {"hidden": [h, h], "n_channels": args.n_channels, **n},
        "dense": {"hidden": [hd, hd], "params": count_parameters(dense)["total"]},
        "dan_ms": dan_ms,
        "dense_ms": dense_ms,
        "loop_ms": loop_ms,
        "dan_over_dense": dan_ms / dense_ms,
        "loop_over_dan": loop_ms / dan_ms,
        "dan_synapses_only_ms": timeit(synapses_only, device, reps),
        "dan_phenotype_only_ms": timeit(phenotype_only, device, reps),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="4e5,1e7", help="total DAN parameter counts")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--input-dim", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--n-channels", type=int, default=4)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    results = [run_size(int(float(s)), args, device) for s in args.sizes.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(json.dumps({"bench": "dan_layer", "device": name, "batch": args.batch, "results": results}))


if __name__ == "__main__":
    main()
