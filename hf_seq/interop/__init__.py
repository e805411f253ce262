"""Interop with the classic toolkits (issue #22): OpenNMT/eole checkpoints in, word vector files in.

    convert_eole("eole-run/step_1000", "my-model")          # an hf-seq translation folder
    import_vectors("glove.6B.300d.txt", "glove-300d")      # a Word2VecModel folder
    kv = keyed_vectors_from_pretrained("glove-300d")       # folder or Hub repo id, safetensors only
"""

from .eole import convert_eole
from .vectors import detect_format, import_vectors, keyed_vectors_from_pretrained, read_vectors

__all__ = ["convert_eole", "import_vectors", "keyed_vectors_from_pretrained", "read_vectors", "detect_format"]
