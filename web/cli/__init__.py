"""The `telerad` command line (web.cli.main:main) and the demo data."""
