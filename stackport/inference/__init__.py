"""Inference: the ONNX model artifact and the torch-free predictor the service runs."""
