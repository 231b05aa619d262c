"""`make bench`: what a reconcile costs the registry at 1,000 models,
side by side with the per-model loop a user would otherwise write, measured against a real
MLflow server that the benchmark starts. The package only measures and reports: it imports
the controller as users run it (the library in-process, the CLI and the controller loop as
subprocesses) and never changes how the controller behaves. Each module is one measurement;
`report` turns the figures into the table and BENCHMARKS.md."""
