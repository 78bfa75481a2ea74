"""The bundled specs (YAML files), shipped inside the wheel as ``cnnsize.specs``."""
