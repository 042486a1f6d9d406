"""`hmc-broker bench`: the broker end to end, measured side by side with a raw and a naive baseline.

Absolute times drift from run to run on a shared machine, so every figure that matters is a ratio to
a baseline measured in the same run: a raw pika pass-through (the ceiling of a Python AMQP loop) and
the loop a team would write by hand (validate, insert, commit, publish with a blocking confirm, ack).
"""
