"""``python -m tracker_sim``: see :mod:`tracker_sim.cli`."""

import sys

from tracker_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
