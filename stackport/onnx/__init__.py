"""ONNX: export with Optimum and a parity check, int8 quantization and its gate, the benchmark."""
