"""Single-label classification: one label per text."""
