import sys

from transferviz.cli import main

sys.exit(main())
