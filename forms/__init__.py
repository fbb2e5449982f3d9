"""Task forms: one JSON Schema per user task, loading and validation with French messages.

This package is the bottom layer: it imports nothing from Telerad. The WTForms renderer lives in its
own module so that the engine can validate without importing WTForms.
"""

from forms.registry import FormRegistry, FormSource, default_registry
from forms.validation import FormValidationError

__all__ = ["FormRegistry", "FormSource", "FormValidationError", "default_registry"]
