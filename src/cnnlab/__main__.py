"""``python -m cnnlab`` (and ``torchrun -m cnnlab``) runs the command-line tool."""

import sys

from cnnlab.cli import main

sys.exit(main())
