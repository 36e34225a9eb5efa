"""The sampling-time table as a Ray job (on the cluster node's device):

    ray job submit --working-dir . -- python jobs/active_sampling_time.py --out runs/sampling_time"""

import sys

from raycl.cli import main

if __name__ == "__main__":
    sys.exit(main(["active", "sampling-time", *sys.argv[1:]]))
