"""The AMQP edge: the topology of the contract (DESIGN.md section 4) and a confirming publisher."""
