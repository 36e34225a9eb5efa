"""Sampling-time table (dissertation Table 3.1): selection seconds per query strategy on the
same unlabeled pool and the same trained model. Prints one JSON line.

    PYTHONPATH=. python bench/sampling.py                 # 10,000-image 28x28 pool, LeNet M2
    PYTHONPATH=. python bench/sampling.py --strategies random uncertainty weibull

`weibull_over_uncertainty` is the ratio the dissertation reports as 20.41 / 10.89 = 1.9."""

import argparse
import json
import sys

from raycl.active.cli import add_timing_args
from raycl.active.timing import sampling_time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_timing_args(p)
    a = p.parse_args(argv)
    result = sampling_time(pool=a.pool, labeled=a.labeled, budget=a.budget, size=a.size, repeats=a.repeats,
                           strategies=a.strategies, device=a.device, seed=a.seed, train_steps=a.train_steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
