"""Ray job: `raycl selfnet continual` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_continual.py --out runs/selfnet_continual [options]

Options are those of `raycl selfnet continual --help`; --workers defaults to 2 here (Ray on).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "continual"], {"--workers": "2"})
