"""The benchmarks (benchmarks/README.md): the national scripts, their shared helpers and the micro-benchmarks."""
