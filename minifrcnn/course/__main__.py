"""``python -m minifrcnn.course``: the classroom editions (see :mod:`minifrcnn.course.editions`)."""
import sys

from .editions import main

if __name__ == "__main__":
    sys.exit(main())
