"""Ray job: `raycl selfnet scaling` with task networks trained as Ray tasks.

    ray job submit --working-dir . -- python jobs/selfnet_scaling.py --out runs/selfnet_scaling [options]

Options are those of `raycl selfnet scaling --help`; --workers defaults to 2 here (Ray on).
"""

from _entry import run

if __name__ == "__main__":
    run(["selfnet", "scaling"], {"--workers": "2"})
