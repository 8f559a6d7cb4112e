"""`python -m ccrbench` (and `torchrun ... -m ccrbench run ...`): the command line."""

import sys

from ccrbench.cli import main

sys.exit(main())
