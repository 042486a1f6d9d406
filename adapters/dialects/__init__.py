"""The two XML dialects (customer systems, SESAM2), driven by one mapping table (mapping.py)."""
