"""Pure charter rules and value types. Standard library only."""
