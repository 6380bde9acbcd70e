"""Experiment runs: ``ponder run`` (a Hydra app over datasets, strategies, budgets and
backends, one folder of records and metrics per run) and ``ponder report`` (sweeps side by
side, and the test-time scaling curve)."""
