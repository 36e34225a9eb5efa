"""`raycl activation`: the learned activation view of a one-input-channel phenotype."""

from __future__ import annotations

import argparse
from pathlib import Path

from raycl import RayclError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "activation",
        help="plot f and f' of a one-input-channel phenotype (§6.4.6)",
        description=(
            "A DAN with n_channels=1 maps one number to one number: a learned activation function. "
            "Reads a phenotype checkpoint (raycl sine writes RUN/checkpoints/phenotype.pt; a bare φ state "
            "dict works too) and draws f(x) and its derivative f'(x) for every phenotype in it "
            "(one row per shared phenotype, per layer for net1, the first units for net2)."
        ),
    )
    p.add_argument("checkpoint", help="phenotype checkpoint (.pt)")
    p.add_argument("--out", required=True, help="PNG file to write (its folder must exist)")
    p.add_argument("--overwrite", action="store_true", help="replace the file already at --out")
    p.add_argument("--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LO", "HI"), help="input range")
    p.set_defaults(func=cmd_activation)


def cmd_activation(args) -> int:
    from raycl.dan.activation import activation_figure
    from raycl.dan.checkpoint import load_phenotype, phenotypes_from_state
    from raycl.checks import output_file
    from raycl.runio import save_figure

    lo, hi = args.range
    if not lo < hi:
        raise RayclError(f"--range LO HI needs LO < HI, got {lo:g} {hi:g}")
    output_file(args.out, args.overwrite)
    if Path(args.checkpoint).is_dir():
        raise RayclError(f"{args.checkpoint} is a folder; give the phenotype checkpoint file, e.g. "
                         "RUN/checkpoints/phenotype.pt of a `raycl sine` run")
    ckpt = load_phenotype(args.checkpoint)
    try:
        phens = phenotypes_from_state(ckpt["phi"])
    except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as e:  # a φ dict of the wrong shape
        raise RayclError(f"{args.checkpoint} does not hold a complete phenotype ({type(e).__name__}: {e}); give a "
                         "checkpoint `raycl sine` wrote (RUN/checkpoints/phenotype.pt)") from None
    epoch = (ckpt.get("meta") or {}).get("epoch")
    title = f"{args.checkpoint}" + (f" (meta-epoch {epoch})" if epoch is not None else "")
    path = save_figure(activation_figure(phens, *args.range, title=title), args.out)
    print(f"wrote {path} ({len(phens)} phenotype(s): {', '.join(phens)})")
    return 0
