"""City-scale benchmarks (see benchmarks/README.md)."""
