"""Logs, metrics, health and the outage watch: what operations see of the broker."""
