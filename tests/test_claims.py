"""The dissertation's claims, checked small and fast in the default test run (issue 20).

- Chapter 5 (§5.6-5.7, Fig 5.5; SPEC.md §2): a meta-learned DAN phenotype, held fixed, lets
  fresh synapses learn unseen sine functions sub-task by sub-task with a lower whole-function
  MSE than the random phenotype φ0 it started from (slow version: test_sine.py,
  test_meta_training_beats_random_phenotype).
- Chapter 3 (§3.3.4 and the out-of-distribution scenario; SPEC.md §5): Weibull (EVT) sampling
  with outlier rejection queries fewer out-of-distribution images than uncertainty sampling
  when the pool holds OOD images (slow version: test_active.py,
  test_weibull_with_rejection_queries_fewer_ood_than_random).

Tiny sizes and fixed seeds, in process (no Ray); each claim has a negative control showing the
margin is not reached when the mechanism behind the claim is switched off, so the test can fail.
The margins were chosen from measurements over several seeds (see the constants below).
"""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")


# -- Chapter 5: meta-learned phenotype vs random phenotype -----------------------------------
# (16,16) DANs, 8 channels, 20 samples per sub-task, Adam (α 1e-2, γ 1e-3), 30 meta-epochs,
# 8 unseen functions. Mean whole-function MSE random φ0 / meta-learned φ*, measured over seeds:
# 30 meta-epochs: 2.13, 1.32, 1.21, 1.55, 1.51, 1.75 (seeds 0-5; meta-learned better on 5, 4, 5, 6, 6, 7
# of the 8 functions); 20 meta-epochs: 1.84, 1.34, 1.42, 1.02, 1.91, 1.49. With γ = 0 the ratio is 1.
SINE_SEED = 0
SINE_MARGIN = 0.85  # meta-learned mean MSE at most 0.85 x random's (random at least 1.18x meta-learned's)


def _sine_deployment(lr_phi: float, seed: int = SINE_SEED, epochs: int = 30, functions: int = 8):
    """Meta-train φ from the seeded θ0/φ0 at lr γ = lr_phi; deploy φ* and φ0 (both fixed) on the
    same unseen functions. Returns (meta-learned, random) whole-function MSE per function."""
    from raycl.dan import snapshot
    from raycl.sine.config import SineConfig
    from raycl.sine.meta import SineLearner, deploy, meta_train
    from raycl.sine.tasks import sample_function, sample_stream, whole_function_grid

    cfg = SineConfig(hidden=(16, 16), n_channels=8, samples_per_task=20, lr_theta=1e-2, lr_phi=lr_phi,
                     optimizer="adam", grid_points=200)
    learner = SineLearner.build(cfg, torch.Generator().manual_seed(seed))
    phi0 = snapshot(learner.phi)
    rng = np.random.default_rng(1000 + seed)  # unseen functions: never meta-trained on
    fns = [sample_function(rng, cfg.filter) for _ in range(functions)]
    streams = [(sample_stream(f, rng, cfg.n_subtasks, cfg.samples_per_task), whole_function_grid(f, cfg.grid_points))
               for f in fns]
    meta_train(learner, cfg, np.random.default_rng(seed), epochs)
    meta = [r["total"][-1] for r in deploy(learner, snapshot(learner.phi), streams)]
    rand = [r["total"][-1] for r in deploy(learner, phi0, streams)]
    return np.array(meta), np.array(rand)


def test_claim_meta_learned_phenotype_beats_random_phenotype_on_unseen_sine_functions():
    meta, rand = _sine_deployment(lr_phi=1e-3)
    assert meta.mean() <= SINE_MARGIN * rand.mean(), (
        f"Chapter 5 claim not met: the meta-learned phenotype's whole-function MSE on unseen functions "
        f"({meta.mean():.4f}) is not below {SINE_MARGIN} x the random phenotype's ({rand.mean():.4f})")


def test_claim_negative_control_phenotype_not_meta_learned_misses_the_margin():
    """γ = 0: meta-training never moves φ, so 'meta-learned' is φ0 and the margin is not reached."""
    meta, rand = _sine_deployment(lr_phi=0.0)
    assert not meta.mean() <= SINE_MARGIN * rand.mean(), (meta.mean(), rand.mean())
    assert meta.mean() == pytest.approx(rand.mean(), rel=1e-6)


# -- Chapter 3: Weibull sampling queries fewer OOD images ------------------------------------
# Offline digits with 20% `shapes` OOD images in the pool, VNN (M2, small backbone), L0 = 50,
# 2 query stages of b = 50, 30 epochs a stage. OOD images queried (of 100), seeds 0-3:
#   uncertainty                                 74, 45, 58, 74
#   weibull:threshold=val,balance=1,unknowns=1  17, 19, 17, 21
#   weibull (plain: highest outlier prob.)      45, 30, 66, 32
# (random: 19, 20, 20, 19 of 100-120 at this scale: level with Weibull, which gains on random only
# at the full scale of docs/results/active.md, 48 against 85 of 400.)
WEIBULL = "weibull:threshold=val,balance=1,unknowns=1"
OOD_SEED = 0
OOD_MOST = 25  # Weibull with rejection queries at most 25 OOD of its 100
OOD_FEWER_BY = 20  # and at least 20 fewer than uncertainty sampling


def _ood_queries(strategy: str, seed: int = OOD_SEED) -> int:
    from raycl.active.loop import LoopConfig, run
    from raycl.active.scenario import Scenario
    from raycl.active.config import ActiveTrainConfig

    data = Scenario().build(seed)  # digits + 20% shapes OOD, shipped with the package
    assert data.ood.mean() == pytest.approx(0.2, abs=0.01)
    cfg = LoopConfig(initial=50, budget=50, stages=2, train=ActiveTrainConfig(epochs=30, min_steps=60, eval_every=5,
                                                                                    patience=0))
    rows = run(data, strategy, seed, cfg)
    assert rows[-1]["queries"] == 100
    return rows[-1]["ood_queries"]


def test_claim_weibull_sampling_queries_fewer_ood_images_than_uncertainty_sampling():
    weibull, uncertainty = _ood_queries(WEIBULL), _ood_queries("uncertainty")
    assert weibull <= OOD_MOST and uncertainty - weibull >= OOD_FEWER_BY, (
        f"Chapter 3 claim not met: Weibull sampling with outlier rejection queried {weibull} OOD images of 100, "
        f"uncertainty sampling {uncertainty} (want at most {OOD_MOST} and at least {OOD_FEWER_BY} fewer)")


def test_claim_negative_control_weibull_without_rejection_misses_the_margin():
    """The plain reading (query the highest outlier probabilities, reject nothing) is drawn to the
    OOD images: it does not reach the margin."""
    assert _ood_queries("weibull") > OOD_MOST
