"""Helpers the tests share, imported as `tests.support.<module>`; no test module imports another test module
or a conftest. `fixtures` is the pytest plugin (named in tests/conftest.py) that holds the shared fixtures:
the machine's RabbitMQ and PostgreSQL, the one `store` fixture, AMQP names of a test's own, and the fault
tests' guards."""
