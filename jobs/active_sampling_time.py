"""The sampling-time table as a Ray job (on the cluster node's device):

    ray job submit --working-dir . -- python jobs/active_sampling_time.py --out runs/sampling_time"""

from _entry import run

if __name__ == "__main__":
    run(["active", "sampling-time"])
