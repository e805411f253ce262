"""hf-seq: the classic sequence models as first-class Hugging Face models."""

__version__ = "0.1.0"

from .auto import register_auto_classes

register_auto_classes()
