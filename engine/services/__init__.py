"""Use cases. Each opens one unit of work, locks what it changes and commits once."""
