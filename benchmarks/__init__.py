"""joerl benchmarks: every figure beside its baselines, measured in the same run."""
