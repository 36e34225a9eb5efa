"""Ray job entry point for the Chapter 5 experiment:

    ray job submit --working-dir . -- python jobs/sine.py --out runs/sine [raycl sine options]

It runs in the job's driver process (one target function at a time is inherently
sequential); every option of `raycl sine --help` is accepted.
"""

import sys

from raycl.cli import main

if __name__ == "__main__":
    sys.exit(main(["sine", *sys.argv[1:]]))
