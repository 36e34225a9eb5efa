"""The Chapter 5 settings (§5.6), free of torch so that `raycl sine --help` can show them.

`SineConfig` is the algorithm's (network, learning rates, stream); `SineRun` the experiment's
around it (how many meta-epochs, deployment functions, comparisons). Their defaults are the
dissertation's; a preset names a few changes to them, and a flag changes one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from raycl.cliargs import setting
from raycl.sine.names import FILTERS, OPTIMIZERS, VARIANTS




def _list(convert):
    def parse(text: str) -> tuple:
        import argparse

        try:
            return tuple(convert(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None

    parse.__name__ = f"comma-separated {convert.__name__}s"
    return parse


@dataclass
class SineConfig:
    """The algorithm's settings (§5.6)."""

    sharing: str = setting("net0", "net0: one phenotype; net1: one per layer; net2: one per DAN", ("net0", "net1", "net2"))
    n_channels: int = setting(40, "synaptic vector size = the phenotype's inputs")
    hidden: tuple[int, ...] = setting((40, 40), "hidden DAN layer widths")
    phenotype_hidden: tuple[int, ...] = setting((15, 8), "the phenotype MLP's hidden widths")
    skips: bool = setting(True, "the j->j+2 skip synapses")
    phenotype_gain: float = setting(1.0, "gain of the phenotype's random initialisation")
    lr_theta: float = setting(1e-3, "α, the synapses' learning rate")
    lr_phi: float = setting(1e-4, "γ, the phenotype's learning rate")
    deploy_lr_theta: float | None = setting(None, "α at deployment, for every phenotype (default: --lr-theta)")
    optimizer: str = setting("adam", "update rule for both θ and φ: adam, or sgd (plain steps as in eq 5.5; at α=1e-3 "
                        "synapses barely move in 500 batch-1 steps, see docs/dan.md)", OPTIMIZERS)
    n_subtasks: int = setting(5, "sub-tasks (x ranges) each target function is learned in")
    samples_per_task: int = setting(100, "batch-1 updates per sub-task")
    filter: str = setting("range", "target filter: range keeps functions inside [-.8,.8] (the output range the text "
                     "states); literal applies the printed inequalities (y_min > -.8 discarded)", FILTERS)
    grid_points: int = setting(500, "points of the whole-function grid the MSE is measured on")
    inner_phi: bool = setting(True, "φ also learns from every inner step's task loss (Alg. line 6), not only the memory loss")
    extra: dict = field(default_factory=dict)

    def model_kwargs(self) -> dict:
        return dict(
            hidden=tuple(self.hidden), n_channels=self.n_channels, sharing=self.sharing, skips=self.skips,
            phenotype_hidden=tuple(self.phenotype_hidden), phenotype_gain=self.phenotype_gain,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SineRun:
    """The experiment around the algorithm."""

    epochs: int = setting(300, "meta-epochs, one target function each")
    deploy_functions: int = setting(25, "unseen deployment functions")
    variants: tuple[str, ...] = setting(tuple(VARIANTS), "comma-separated deployment variants (Fig 5.5)", type=_list(str))
    compare: tuple[str, ...] = setting((), "extra meta-trainings: sharing (Fig 5.4 net0/net1/net2), channels (the "
                                  "n_channels sweep)", ("sharing", "channels"))
    channels: tuple[int, ...] = setting((1, 5, 10, 20, 40), "n_channels values for the sweep", type=_list(int))
    ckpt_every: int = setting(50, "checkpoint φ every N meta-epochs")


PRESETS: dict[str, dict] = {
    # the dissertation's settings (§5.6) and the must-show comparison
    "dissertation": {},
    # adds Fig 5.4 (net0/net1/net2) and the n_channels sweep: 7 meta-trainings in all
    "full": {"compare": ("sharing", "channels")},
    # a smoke run (seconds): tiny network, few epochs
    "quick": {"epochs": 6, "deploy_functions": 3, "hidden": (8, 8), "n_channels": 4, "samples_per_task": 10,
              "channels": (1, 4), "ckpt_every": 3},
}
