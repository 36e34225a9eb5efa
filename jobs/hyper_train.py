"""`ray job submit` entry point for Ray-backend hyper-training.

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/hyper_train.py --preset default --population 3 --out /abs/path/run

Every argument is passed to `raycl hyper-train --backend ray` (see its --help). Inside a job
RAY_ADDRESS is set, so the trainer joins that cluster instead of starting one. Give --out as
an absolute path: the job runs in a temporary copy of the working directory.
"""

from _entry import run

if __name__ == "__main__":
    run(["hyper-train", "--backend", "ray"])
