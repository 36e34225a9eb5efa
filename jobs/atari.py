"""Ray job: `raycl atari`, the cluster preset unless told otherwise.

    ray job submit --working-dir . -- python jobs/atari.py --out runs/atari [options]

Options are those of `raycl atari --help`; --preset defaults to cluster here (40M frames a
game, 20 workers, 80 whole evaluation episodes, AE 76,863-2000-200).
"""

from _entry import run

if __name__ == "__main__":
    run(["atari"], {"--preset": "cluster"})
