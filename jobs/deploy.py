"""`ray job submit` entry point for `raycl deploy` (the deployment comparison of a run).

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/deploy.py /abs/path/run --d 5 --d 10

Every argument is passed to `raycl deploy` (see its --help); the run folder must be an
absolute path on the node that runs the job's driver.
"""

from _entry import run

if __name__ == "__main__":
    run(["deploy"])
