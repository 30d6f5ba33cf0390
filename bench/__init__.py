"""evenhand's benchmarks: `python -m bench [--quick] [--out PATH]` (see docs/benchmarks.md)."""
