import sys

from redcloud.demo.cli import main

sys.exit(main())
