"""ZenML stacks defined as YAML files and the code that registers them."""
