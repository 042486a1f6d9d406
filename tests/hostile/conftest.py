"""The hostile suite reuses the services' fixtures (amqp_url, and postgres_url: a database of its own)."""

from tests.integration.conftest import amqp_url, postgres_url

__all__ = ["amqp_url", "postgres_url"]
