"""Edges of the broker: the XML dialects, AMQP transport, simulators and exports."""
