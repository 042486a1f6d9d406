"""Operating the message store: search, show, replay, audit, retention."""
