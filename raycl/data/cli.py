"""`raycl data list` and `raycl data preview`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list image sources, preview one", description="Image sources raycl can load.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="every source and whether it works offline").set_defaults(func=cmd_list)
    pv = dsub.add_parser(
        "preview", help="write a PNG grid of samples per class",
        description="Load a source exactly as training does and write a PNG grid: one row per class, its "
        "samples across. Offline sources need nothing; real ones need --data-root (or --download).")
    pv.add_argument("name", help="source name (see `raycl data list`)")
    pv.add_argument("--out", required=True, help="PNG file to write (its folder must exist)")
    pv.add_argument("--overwrite", action="store_true", help="replace the file already at --out")
    pv.add_argument("--split", default=None, help="split to show (default: the source's first)")
    pv.add_argument("--data-root", default=None, help="folder holding a real dataset")
    pv.add_argument("--download", action="store_true", help="let torchvision download the dataset")
    pv.add_argument("--classes", type=int, default=10, help="classes to show (rows)")
    pv.add_argument("--per-class", type=int, default=10, help="samples per class (columns)")
    pv.set_defaults(func=cmd_preview)


def cmd_list(args) -> int:
    from raycl.data import SOURCES

    width = max(len(n) for n in SOURCES)
    print(f"{'name':<{width}}  {'offline':<7}  {'splits':<28}  description")
    for s in SOURCES.values():
        print(f"{s.name:<{width}}  {'yes' if s.offline else 'no':<7}  {', '.join(s.splits):<28}  {s.description}")
    return 0


def preview_figure(data, classes: int = 10, per_class: int = 10):
    """One row per class (its name on the left), `per_class` samples in each row."""
    from raycl.plots import pyplot

    plt = pyplot()

    groups = [g for g in data.by_class() if len(g)][:classes]
    if not groups:
        from raycl import RayclError

        raise RayclError(f"dataset '{data.name}' has no images to preview")
    per_class = min(per_class, max(len(g) for g in groups))
    height = 0.45 + len(groups) * 0.8
    fig, axes = plt.subplots(len(groups), per_class, figsize=(1.6 + per_class * 0.8, height), squeeze=False,
                             gridspec_kw=dict(wspace=0.06, hspace=0.06, top=1 - 0.4 / height, bottom=0.02))
    for r, idx in enumerate(groups):
        for c in range(per_class):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
            if c < len(idx):
                img = data.images[idx[c]]
                img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
                ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r][0].set_ylabel(data.class_names[int(data.labels[idx[0]])][-16:], rotation=0, ha="right", va="center",
                              fontsize=8)
    shown = f"first {len(groups)} of " if len(groups) < data.num_classes else ""
    fig.suptitle(f"{data.name}: {len(data)} images, {shown}{data.num_classes} classes, "
                 f"shape {tuple(data.shape)}", fontsize=9, y=0.995)
    return fig


def cmd_preview(args) -> int:
    from raycl.checks import output_file
    from raycl.data import load
    from raycl.runio import save_figure

    output_file(args.out, args.overwrite)  # before loading anything
    data = load(args.name, split=args.split, root=args.data_root, download=args.download)
    path = save_figure(preview_figure(data, args.classes, args.per_class), args.out)
    print(f"wrote {path} ({data.name}: {len(data)} images, {data.num_classes} classes)")
    return 0
