"""Sources core reads without any framework: numpy mappings, ``.npz`` and ``.safetensors``."""
