"""Any active-learning scenario as a Ray job (standard, biased, noisy, ood; DAL-OSR or DALBT):

    ray job submit --working-dir . -- python jobs/active_run.py --scenario biased --out runs/al_biased
    ray job submit --working-dir . -- python jobs/active_run.py --model dalbt --scenario standard \
        --strategies random weibull batchbald waal --out runs/dalbt

Arguments are those of `raycl active run`."""

from _entry import run

if __name__ == "__main__":
    run(["active", "run"])
