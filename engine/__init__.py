"""Telerad engine: charter rules, BPMN runtime, persistence and use cases (no web framework)."""
