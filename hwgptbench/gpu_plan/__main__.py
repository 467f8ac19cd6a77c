import sys

from ..cli.gpu_plan import main

sys.exit(main())
