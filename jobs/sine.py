"""Ray job entry point for the Chapter 5 experiment:

    ray job submit --working-dir . -- python jobs/sine.py --out runs/sine [raycl sine options]

One meta-training is inherently sequential (one target function at a time) and runs in the
job's driver; independent ones (`--seeds N`, `--compare sharing channels`) run as Ray tasks
on the cluster. Every option of `raycl sine --help` is accepted.
"""

from _entry import run

if __name__ == "__main__":
    run(["sine"])
