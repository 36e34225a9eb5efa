"""Ray job: `raycl selfnet multiarch` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_multiarch.py --out runs/selfnet_multiarch [options]

Options are those of `raycl selfnet multiarch --help`; --workers defaults to 2 here (Ray on).
"""

import sys

from raycl.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--workers" or a.startswith("--workers=") for a in argv):
        argv += ["--workers", "2"]
    sys.exit(main(["selfnet", "multiarch", *argv]))
