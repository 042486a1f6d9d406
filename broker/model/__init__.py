"""Domain model: message types (messages), code lists (codes) and field annotations (types).

No XML, AMQP or SQL in here; import from the submodules.
"""
