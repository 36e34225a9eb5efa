"""Ray job: `raycl selfnet continual` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_continual.py --out runs/selfnet_continual [options]

Options are those of `raycl selfnet continual --help`; --workers defaults to 2 here (Ray on).
"""

import sys

from raycl.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--workers" or a.startswith("--workers=") for a in argv):
        argv += ["--workers", "2"]
    sys.exit(main(["selfnet", "continual", *argv]))
