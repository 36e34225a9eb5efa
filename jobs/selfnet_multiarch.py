"""Ray job: `raycl selfnet multiarch` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_multiarch.py --out runs/selfnet_multiarch [options]

Options are those of `raycl selfnet multiarch --help`; --workers defaults to 2 here (Ray on).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "multiarch"], {"--workers": "2"})
