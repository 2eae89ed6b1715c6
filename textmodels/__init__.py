"""Plain, framework-free functions for fine-tuning transformer text models.

ZenML steps, the benchmarks and the tests call into this package; nothing here imports ZenML.
"""
