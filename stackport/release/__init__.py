"""Release: what a model version records, and the gates that promote it."""
