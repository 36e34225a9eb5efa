"""Active learning's training settings, free of torch so that `raycl active run --help` can
show them: their defaults are the command's."""

from __future__ import annotations

from dataclasses import dataclass

from raycl.cliargs import setting


# the encoders of raycl.active.models.ENCODERS, and auto (chosen from the image size)
BACKBONES = ("auto", "small", "lenet", "vgg16")


@dataclass
class ActiveTrainConfig:
    """One stage's training (the `raycl active run` defaults)."""

    epochs: int = setting(300, "epochs per stage at most (see --patience)")
    min_steps: int = setting(150, "at least this many updates per stage (tiny pools; early stopping waits for them)")
    batch_size: int = setting(128, "batch size (the command's default: 128 for vnn, 64 for dalbt)", flag=False)
    lr: float = setting(1e-3, "learning rate of the classifier")
    weight_decay: float = setting(1e-5, "weight decay of the classifier")
    optimizer: str = setting("adam", "optimizer of the classifier (sgd: momentum 0.9)", ("adam", "sgd"))
    eval_every: int = setting(5, "epochs between validation checks (model selection)")
    patience: int = setting(25, "early stopping: end a stage's training after this many epochs without a better "
                           "validation accuracy (0: always train --epochs)")
