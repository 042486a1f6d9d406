"""HMC Broker: integration broker between customer ordering systems and SESAM2."""

__version__ = "0.1.0"
