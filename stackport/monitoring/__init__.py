"""Monitoring: the served-input log's window, the training reference, and the drift summary."""
