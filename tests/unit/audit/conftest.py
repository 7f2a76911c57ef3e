"""PostgreSQL for the storage tests that run over both collector backends."""

from support.postgres import postgres_server  # noqa: F401
