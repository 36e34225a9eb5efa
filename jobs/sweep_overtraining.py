"""`ray job submit` entry point for `raycl sweep overtraining` (Ray Tune over whole populations).

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/sweep_overtraining.py --preset tiny --out /abs/path/sweep

Every argument is passed to `raycl sweep overtraining` (see its --help). Inside a job RAY_ADDRESS
is set, so the sweep runs its trials on that cluster. Give --out as an absolute path on
storage every node sees (or the head's disk for one node): the job runs in a temporary copy
of the working directory. Submitting the same command again with --resume resumes a killed sweep.
"""

from _entry import run

if __name__ == "__main__":
    run(["sweep", "overtraining"])
