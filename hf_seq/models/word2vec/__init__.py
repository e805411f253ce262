from .configuration_word2vec import Word2VecConfig
from .keyed_vectors_word2vec import Word2VecKeyedVectors
from .modeling_word2vec import (
    Word2VecForMaskedLM,
    Word2VecForPreTraining,
    Word2VecModel,
    Word2VecPreTrainedModel,
    Word2VecPreTrainingOutput,
    build_huffman_tree,
    keep_probabilities,
    noise_distribution,
)

__all__ = [
    "Word2VecConfig",
    "Word2VecPreTrainedModel",
    "Word2VecModel",
    "Word2VecForPreTraining",
    "Word2VecForMaskedLM",
    "Word2VecPreTrainingOutput",
    "Word2VecKeyedVectors",
    "build_huffman_tree",
    "keep_probabilities",
    "noise_distribution",
]
