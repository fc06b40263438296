"""The outside world: the database, the playbook file, files to import."""
