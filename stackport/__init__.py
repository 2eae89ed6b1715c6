"""Stackport: fine-tune transformer text models, export them to ONNX and serve them.

The sub-packages are the layers of the library (docs/architecture.md): `core`, `data`,
`evaluation`, `tasks`, `inference`, `training`, `onnx`, `release` and `serving`. Nothing
here imports ZenML: the steps and pipelines outside this package do.
"""
