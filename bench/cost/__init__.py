"""What things cost: the one timer, the plan before a run, speed benchmarks against references,
the executors' scaling and the networks' training throughput."""
