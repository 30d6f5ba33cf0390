"""What the tests and the benchmarks share: the LLM stand-in, the stack of real processes, fixtures."""
