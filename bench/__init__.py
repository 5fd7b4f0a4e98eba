"""
The benchmark (``python -m bench.run``) and the in-process profile (``python -m bench.inprocess``).

It starts real processes with the helpers the tests use, from ``tests.support``:
that package is shared by the suite and the benchmark on purpose.
"""

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/ephemeral_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/4"
