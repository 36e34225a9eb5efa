"""Any active-learning scenario as a Ray job (standard, biased, noisy, ood; DAL-OSR or DALBT):

    ray job submit --working-dir . -- python jobs/active_run.py --scenario biased --out runs/al_biased
    ray job submit --working-dir . -- python jobs/active_run.py --model dalbt --scenario standard \
        --strategies random weibull batchbald waal --out runs/dalbt

Arguments are those of `raycl active run`."""

import sys

from raycl.cli import main

if __name__ == "__main__":
    sys.exit(main(["active", "run", *sys.argv[1:]]))
