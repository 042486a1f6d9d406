"""The message contract: the one mapping table (mapping.py), both dialects' bindings, hardened parsing,
XSD validation and the identifier rules. The only code that knows element names."""
