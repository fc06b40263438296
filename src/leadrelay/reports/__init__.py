"""Read-only queries for the reports both teams share."""
