"""The operator console: a web UI and an HTTP API over the store operations of replay/, with real identities.

An edge like replay/ and adapters/: broker/cli.py loads it only for `hmc-broker console` and `hmc-broker
users`; import contracts in pyproject.toml keep the web stack out of the core and SQL out of here.
"""
