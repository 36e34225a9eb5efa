"""Active learning's training settings, free of torch so that `raycl active run --help` can
show them: their defaults are the command's."""

from __future__ import annotations

from dataclasses import dataclass

from raycl.cliargs import floats, ints, setting


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


# continual active learning: who learns the classes as they arrive
LEARNERS = ("dan", "dan-random", "finetune", "scratch")


@dataclass
class ContinualConfig:
    """Continual active learning (`raycl active continual`): the classes arrive a few at a
    time; each stage the learner queries `budget` labels from the unlabeled images of the
    classes seen so far and learns them. dan / dan-random / finetune learn only the stage's
    new labels, carrying their weights over (no replay); scratch retrains a fresh DALBT on
    every label so far. All learn with plain SGD at the rate tuned for them."""

    # one class, few labels, 25 updates a stage: the regime the default preset's phenotype was
    # hyper-trained for (a task is one class, i = 5 instances, k = 25 synaptic steps)
    classes_per_stage: int = setting(1, "classes that arrive at each stage")
    budget: int = setting(10, "b: labels queried at each stage")
    strategy: str = setting("uncertainty", "query strategy from stage 1 on (stage 0 has no model: random); any "
                            "spec of `raycl active run --strategies`")
    epochs: tuple[int, ...] = setting((25, 100), "passes over a stage's training labels (the new ones; scratch: all "
                                      "so far) each learner is tuned over, with the rates (comma-separated)", type=ints)
    batch_size: int = setting(16, "SGD batch size")
    lrs: tuple[float, ...] = setting((0.001, 0.003, 0.01, 0.03, 0.1), "SGD rates each learner is tuned over "
                                     "(comma-separated), with --epochs, on the validation split of --tune-seed",
                                     type=floats)
    tune_seed: int = setting(1000, "first seed of the tuning runs (their class orders and queries), apart from the "
                             "reported seeds")
    tune_seeds: int = setting(2, "tuning runs per setting: a setting scores their mean validation accuracy, and "
                              "nothing if its loss diverges in any")
    clip: float = setting(5.0, "gradient norm clip of every update, every learner (0: none); plain SGD on DALBT at "
                          "rate 0.1 diverged on some seeds without it")
    bt_weight: float = setting(1e-3, "weight γ of the Barlow Twins term (DALBT)")
    projector: int = setting(64, "Barlow Twins projector width")
