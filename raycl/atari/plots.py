"""Fig 2.6: each game's score, original network vs its reconstructions after every stage."""

from __future__ import annotations


def score_figure(table: list[dict], score_rows: list[dict], games):
    from raycl.plots import pyplot

    plt = pyplot()

    games = list(games)
    fig, axes = plt.subplots(1, len(games), figsize=(3.2 * len(games), 3.2), squeeze=False)
    for ax, game in zip(axes[0], games):
        rows = [r for r in table if r["game"] == game]
        if not rows:
            ax.set_visible(False)
            continue
        om, osd = rows[0]["original_mean"], rows[0]["original_std"]
        stages = [r["stage"] for r in rows]
        x0, x1 = min(stages) - 0.5, len(games) - 0.5
        ax.axhline(om, color="k", ls="--", lw=1, label="original mean")
        # the band and the bars: sample std (ddof = 1) over the evaluation episodes; none with one
        ax.fill_between([x0, x1], om - osd, om + osd, color="k", alpha=0.12,
                        label="original ± std")
        ax.errorbar(stages, [r["reconstructed_mean"] for r in rows], yerr=[r["reconstructed_std"] for r in rows],
                    fmt="o", color="C0", capsize=3, label="reconstructed ± std")
        for r in rows:
            ax.annotate(f"{r['cosine']:.4f}", (r["stage"], r["reconstructed_mean"]), textcoords="offset points",
                        xytext=(4, 6), fontsize=6, color="C0")
        ax.set_xlim(x0, x1)
        ax.set_xticks(range(len(games)))
        ax.set_xticklabels([g[:6] for g in games], fontsize=7, rotation=30)
        ax.set_title(game, fontsize=9)
        ax.set_xlabel("after stage", fontsize=8)
    axes[0][0].set_ylabel("score per episode")
    axes[0][0].legend(fontsize=6, loc="best")
    from raycl.stats import what

    n = sorted({r.get(k) for r in table for k in ("original_n", "reconstructed_n") if r.get(k) is not None})
    fig.suptitle("Incremental Atari with Self-Net: original vs reconstructed (labels: cosine)\n"
                 f"{what('evaluation episodes', '/'.join(map(str, n)) or '?')}", fontsize=9)
    fig.tight_layout()
    return fig
