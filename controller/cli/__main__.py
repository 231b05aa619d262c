"""`python -m mlflow_gitops.cli` runs the CLI (same as the `mlflow-gitops` console script)."""

import sys

from mlflow_gitops.cli import main

sys.exit(main())
