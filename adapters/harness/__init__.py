"""Test harness: realistic synthetic traffic (generator), SESAM2's behaviour (sesam2_sim), scripted
sequences (scenarios), and the `inject` / `simulate-sesam2` commands that put them on RabbitMQ (cli).

Everything here makes synthetic data only: personnummer from Skatteverket's test range, phone numbers
from PTS's range for fiction, invented names and addresses.
"""
