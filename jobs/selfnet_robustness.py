"""Ray job: `raycl selfnet robustness` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_robustness.py --out runs/selfnet_robustness [options]

Options are those of `raycl selfnet robustness --help`; --workers defaults to 2 here (Ray on).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "robustness"], {"--workers": "2"})
