"""Ray job: `raycl selfnet robustness` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_robustness.py --out runs/selfnet_robustness [options]

Options are those of `raycl selfnet robustness --help` (task networks train as Ray tasks
on the cluster; --no-ray trains them in the job's driver).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "robustness"])
