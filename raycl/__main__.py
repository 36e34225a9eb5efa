import sys

from raycl.cli import main

sys.exit(main())
