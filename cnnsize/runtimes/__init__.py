"""Runtimes: a model file run under its own runtime (ONNX Runtime) beside cnnsize's import of it, for validate and
bench on an .onnx file. Above the importers and the executor, which stay apart."""
