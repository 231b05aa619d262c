"""`python -m controller.cli` runs the CLI (same as the `mlflow-gitops` console script)."""

import sys

from controller.cli import main

sys.exit(main())
