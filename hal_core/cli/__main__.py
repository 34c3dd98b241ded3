import sys

from hal_core.cli import main

sys.exit(main())
