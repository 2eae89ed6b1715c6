"""The BentoML service that serves an exported `OnnxModel`; runs with the bento's packages only.

Nothing in this package (or what it imports from `textmodels`) may import torch or
transformers: a bento installs onnxruntime, tokenizers, numpy, pydantic and PyYAML.
"""
