"""`python -m video2reward.cli ...` (what torchrun runs): the `v2r` command."""

import sys

from video2reward.cli import main

sys.exit(main())
