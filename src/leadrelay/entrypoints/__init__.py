"""Ways in: the command line (and, later, the HTTP API and web pages)."""
