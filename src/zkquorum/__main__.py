import sys

from zkquorum.cli.main import main

sys.exit(main())
