"""Continual active learning with DANs as a Ray job: the (learner, seed) runs and the tuning
runs are Ray tasks on the cluster.

    ray job submit --working-dir . -- python jobs/hyper_train.py --seeds 3 --out runs/phen
    ray job submit --working-dir . -- python jobs/active_continual.py --phenotype runs/phen --seeds 6 --out runs/cal

Arguments are those of `raycl active continual`."""

from _entry import run

if __name__ == "__main__":
    run(["active", "continual"])
