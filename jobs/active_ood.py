"""DAL-OSR with out-of-distribution images in the pool, as a Ray job:

    ray job submit --working-dir . -- python jobs/active_ood.py --out runs/al_ood
    ray job submit --working-dir . -- python jobs/active_ood.py --out runs/c10_svhn \
        --data cifar10 --ood svhn --data-root /data --initial 5000 --budget 2500 --epochs 150

Any `raycl active run` option may follow; the defaults are the offline digits + shapes pool."""

from _entry import run

if __name__ == "__main__":
    run(["active", "run", "--scenario", "ood"])
