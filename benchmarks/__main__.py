"""`python -m benchmarks [flags]`: the benchmark run (see benchmarks/bench.py for the cases)."""

from benchmarks.bench import main

raise SystemExit(main())
