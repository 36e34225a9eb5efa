"""Ray job: `raycl selfnet continual` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_continual.py --out runs/selfnet_continual [options]

Options are those of `raycl selfnet continual --help` (task networks train as Ray tasks
on the cluster; --no-ray trains them in the job's driver).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "continual"])
