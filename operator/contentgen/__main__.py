import sys

from contentgen.cli.main import main

sys.exit(main())
