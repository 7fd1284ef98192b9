"""``python -m sparsedream_fast.cli``: the ``sparsedream`` command."""
import sys

from . import main

sys.exit(main())
