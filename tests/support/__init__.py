"""
Real processes and tools for tests and for the benchmark: gunicorn, nginx, Redis, PostgreSQL clusters.

A package shared on purpose: the suite (through tests/conftest.py) and the
benchmark (``bench/``) start and stop the service the same way, so a benchmark
measures exactly what the tests check. It may import Django and the project's
settings helpers, never ``bench``; anything only one test module needs stays in
that module.
"""
