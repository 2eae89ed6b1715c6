"""Serving: bento building, local and container deployment, and the BentoML service."""
