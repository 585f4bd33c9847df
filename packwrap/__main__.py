import sys

from packwrap.cli import main

sys.exit(main())
