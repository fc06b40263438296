"""Use cases: each loads through a unit of work, calls the domain and commits once."""
