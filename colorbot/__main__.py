import sys

from colorbot.cli import main

sys.exit(main())
