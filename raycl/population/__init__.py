"""Ray plumbing for Hyper-Learning: a synapse-worker actor per model, a phenotype-server actor
for φ, and `RayTrainer`, which drives them with the reference trainer's interface and numbers.
The algorithm itself lives in raycl.hyper; nothing here computes a step differently.
`PackedTrainer` is the same population stacked in one process (its steps vmapped together)."""

from raycl.population.packed import PackedTrainer
from raycl.population.trainer import RayTrainer

__all__ = ["PackedTrainer", "RayTrainer"]
