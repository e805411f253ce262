"""word2vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling or hierarchical softmax.

Checkpoint layout, shared by every head so one folder loads as any of them:
    word2vec.embeddings.weight      [V, d]   input vectors (`syn0` of word2vec.c), the word vectors users want
    output_layer.weight             [V, d]   output vectors (`syn1neg`) for negative sampling, or
                                    [V-1, d] Huffman inner-node vectors (`syn1`) for hierarchical softmax
    output_layer.noise_distribution [V]      counts**0.75, normalised (negative sampling)
    output_layer.huffman_points     [V, D]   inner nodes on each word's root-to-leaf path (hierarchical softmax)
    output_layer.huffman_codes      [V, D]   the branch (0/1) taken at each of those nodes
    output_layer.huffman_lengths    [V]      path length (0 for words with count 0)
"""

import heapq
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput
from transformers.utils import ModelOutput, logging

from .configuration_word2vec import Word2VecConfig

logger = logging.get_logger(__name__)


class _HeapItem:
    """A Huffman-tree node in the merge heap, ordered by count alone (gensim's `Heapitem`)."""

    __slots__ = ("count", "index")

    def __init__(self, count: int, index: int):
        self.count, self.index = count, index

    def __lt__(self, other: "_HeapItem") -> bool:
        return self.count < other.count


def build_huffman_tree(word_counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huffman tree over the words with a positive count, merged through a binary heap ordered by count alone, as
    gensim 4 builds it (`_build_heap`).

    Returns `(points, codes, lengths)`: for word `w`, `points[w, :lengths[w]]` are the inner nodes from the root down
    (node ids 0..n-2 in merge order, root = n-2 for n counted words, word2vec.c's and gensim's numbering) and
    `codes[w, :lengths[w]]` the branch taken at each (1 = the second of the two nodes merged, as in word2vec.c).
    Words with count 0 get an empty path.

    Any Huffman tree has the same code lengths up to ties, but which tied words become siblings matters: siblings
    share every output vector on their paths but the last. With `prepare_word2vec`'s vocabulary (gensim's order) this
    is gensim's tree node for node. Other pairings of the many rare words of equal count measured worse with CBOW +
    hierarchical softmax on WikiText-2 (WordSim-353, 12 seeds): word2vec.c's two-pointer merge over an alphabetical
    order -1.8 points under gensim, this heap over an alphabetical order -4.0
    (`benchmarks/results/word2vec_history/word2vec_ablation_wikitext2_alphabetical_ties.md`).
    """
    counts = np.asarray(word_counts, dtype=np.int64)
    vocab_size = counts.shape[0]
    words = np.nonzero(counts > 0)[0]
    words = words[np.argsort(-counts[words], kind="stable")]  # most frequent first, ties in id order
    n = words.shape[0]
    if n < 2:
        raise ValueError(f"hierarchical softmax needs at least 2 words with a positive count, got {n}")
    parent = np.zeros(2 * n - 1, dtype=np.int64)
    binary = np.zeros(2 * n - 1, dtype=np.int64)
    heap = [_HeapItem(c, k) for k, c in enumerate(counts[words].tolist())]
    heapq.heapify(heap)
    for a in range(n - 1):
        first, second = heapq.heappop(heap), heapq.heappop(heap)
        parent[first.index] = parent[second.index] = n + a
        binary[second.index] = 1
        heapq.heappush(heap, _HeapItem(first.count + second.count, n + a))
    return huffman_paths(parent, binary, words, vocab_size)


def huffman_paths(parent: np.ndarray, binary: np.ndarray, words: np.ndarray, vocab_size: int):
    """`(points, codes, lengths)` of a merged binary tree: leaves 0..n-1 are `words` (vocabulary ids), inner node
    n + a is the a-th merge, `parent` and `binary` (the branch bit) are given for every node but the root 2n-2."""
    n = words.shape[0]
    root = 2 * n - 2
    # walk every leaf up to the root at once; steps are recorded leaf-to-root, then reversed per word
    up_codes, up_points = [], []
    cur = np.arange(n)
    lengths = np.zeros(n, dtype=np.int64)
    while True:
        active = cur != root
        if not active.any():
            break
        lengths += active
        up_codes.append(np.where(active, binary[cur], 0))
        up_points.append(np.where(active, parent[cur] - n, 0))
        cur = np.where(active, parent[cur], root)
    depth = len(up_codes)
    up_codes, up_points = np.stack(up_codes, 1), np.stack(up_points, 1)  # [n, depth]
    j = np.arange(depth)[None, :]
    src = np.clip(lengths[:, None] - 1 - j, 0, depth - 1)  # root-to-leaf position j reads leaf-to-root step L-1-j
    valid = j < lengths[:, None]
    points = np.zeros((vocab_size, depth), dtype=np.int64)
    codes = np.zeros((vocab_size, depth), dtype=np.int64)
    out_lengths = np.zeros(vocab_size, dtype=np.int64)
    points[words] = np.where(valid, np.take_along_axis(up_points, src, 1), 0)
    codes[words] = np.where(valid, np.take_along_axis(up_codes, src, 1), 0)
    out_lengths[words] = lengths
    return points, codes, out_lengths


def noise_distribution(word_counts, exponent: float = 0.75) -> np.ndarray:
    """Negative-sampling distribution: counts**exponent, normalised (the unigram table of word2vec.c)."""
    counts = np.asarray(word_counts, dtype=np.float64)
    weights = np.where(counts > 0, counts, 0.0) ** exponent
    total = weights.sum()
    if total <= 0:
        raise ValueError("noise distribution needs at least one word with a positive count")
    return weights / total


def keep_probabilities(word_counts, sample: float) -> np.ndarray:
    """Sub-sampling keep-probability of each word, word2vec.c's formula.

    With f = count, T = total count and t = sample: keep = (sqrt(f / (t*T)) + 1) * (t*T) / f, capped at 1.
    `sample=0` keeps everything; words with count 0 get 0.
    """
    counts = np.asarray(word_counts, dtype=np.float64)
    if sample <= 0:
        return np.where(counts > 0, 1.0, 0.0)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.where(counts > 0, np.minimum(keep, 1.0), 0.0)


# Keyword arguments transformers' Trainer and pipelines may pass that word2vec has no use for; others raise.
_IGNORED_KWARGS = frozenset({"position_ids", "num_items_in_batch", "output_attentions"})


# Copied from hf_seq.models.recurrent.modeling_recurrent.is_tracing
def is_tracing(*tensors) -> bool:
    """True while torch.compile / torch.export / jit trace the model, or for tensors without values (fake, meta).

    Checks on tensor values (`if ids.max() >= vocab_size`) are data-dependent Python branches: they break
    `fullgraph=True` and `torch.export`, so they run in eager mode only.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return True
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    if is_exporting is not None and is_exporting():
        return True
    return any(
        isinstance(t, torch.Tensor)
        and (t.device.type == "meta" or (type(t) is not torch.Tensor and not isinstance(t, nn.Parameter)))
        for t in tensors
    )


def _check_kwargs(kwargs: dict, model_name: str) -> None:
    """Refuse keyword arguments the model does not know (a misspelt `attention_maks=` would otherwise be ignored)."""
    unknown = sorted(set(kwargs) - _IGNORED_KWARGS)
    if unknown:
        raise TypeError(f"{model_name}.forward() got unexpected keyword argument(s): {', '.join(map(repr, unknown))}.")


def _check_ids(ids: torch.Tensor, vocab_size: int, name: str, ignore_index: int | None = None) -> None:
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if is_tracing(ids):
        return
    if ignore_index is not None:
        ids = ids[ids != ignore_index]
    if ids.numel() == 0:
        return
    low, high = torch.aminmax(ids)
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} must lie in [0, {vocab_size}), got values in [{int(low)}, {int(high)}]")


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, vocab_size: int) -> None:
    """Non-empty integer ids in range, and a 0/1 mask of the same shape."""
    if input_ids.numel() == 0:
        raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}); need at least one token per row")
    _check_ids(input_ids, vocab_size, "input_ids")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        if not is_tracing(attention_mask) and ((attention_mask != 0) & (attention_mask != 1)).any():  # NaN is neither
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
        if attention_mask.dim() == 2 and not is_tracing(attention_mask):
            # a row without one real token has no vector to give (word2vec.c skips an empty CBOW context)
            empty = (attention_mask == 0).all(dim=1)
            if bool(empty.any()):
                row = int(empty.nonzero()[0])
                raise ValueError(f"row {row} of the batch has no real token (its attention_mask is all 0).")


@dataclass
class Word2VecPreTrainingOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`): the word2vec objective, averaged over the pairs of the batch.
    logits (`torch.FloatTensor`): negative sampling: `[B, 1 + k]` scores of the target then the noise words;
        hierarchical softmax: `[B, D]` scores of the inner nodes on the target's path (0 past its length).
    hidden_states (`torch.FloatTensor` of shape `[B, d]`): the input vector (skip-gram) or the context mean/sum (CBOW).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: torch.FloatTensor | None = None


class Word2VecOutputLayer(nn.Module):
    """Output side of word2vec: output vectors and the noise distribution, or Huffman inner-node vectors and paths."""

    def __init__(self, config: Word2VecConfig):
        super().__init__()
        self.objective = config.objective
        counts = config.word_counts if config.word_counts is not None else [1] * config.vocab_size
        if config.objective == "negative_sampling":
            self.weight = nn.Parameter(torch.zeros(config.vocab_size, config.vector_size))
            self.register_buffer("noise_distribution", torch.zeros(config.vocab_size))
        else:
            points, _, _ = build_huffman_tree(counts)
            self.weight = nn.Parameter(torch.zeros(max(config.vocab_size - 1, 1), config.vector_size))
            self.register_buffer("huffman_points", torch.zeros(points.shape, dtype=torch.long))
            self.register_buffer("huffman_codes", torch.zeros(points.shape, dtype=torch.long))
            self.register_buffer("huffman_lengths", torch.zeros(config.vocab_size, dtype=torch.long))

    def reset_buffers(self, config: Word2VecConfig) -> None:
        counts = config.word_counts if config.word_counts is not None else [1] * config.vocab_size
        if self.objective == "negative_sampling":
            noise = noise_distribution(counts, config.ns_exponent)
            init.copy_(self.noise_distribution, torch.from_numpy(noise).float())
        else:
            points, codes, lengths = build_huffman_tree(counts)
            init.copy_(self.huffman_points, torch.from_numpy(points))
            init.copy_(self.huffman_codes, torch.from_numpy(codes))
            init.copy_(self.huffman_lengths, torch.from_numpy(lengths))

    def path_mask(self, targets: torch.Tensor) -> torch.Tensor:
        """`[..., D]` bool mask of the real steps on each target's Huffman path."""
        depth = self.huffman_points.shape[1]
        return torch.arange(depth, device=targets.device) < self.huffman_lengths[targets].unsqueeze(-1)

    def loss_and_logits(
        self, hidden: torch.Tensor, targets: torch.Tensor, negative_ids: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair loss `[B]` and scores for hidden vectors `[B, d]` predicting `targets` `[B]`."""
        if self.objective == "negative_sampling":
            # 1. positive score then k noise scores; a noise word equal to the target is skipped, as in word2vec.c
            ids = torch.cat([targets.unsqueeze(1), negative_ids], dim=1)  # [B, 1+k]
            logits = torch.bmm(self.weight[ids], hidden.unsqueeze(2)).squeeze(2)  # [B, 1+k]
            keep = torch.ones_like(logits)
            keep[:, 1:] = (negative_ids != targets.unsqueeze(1)).to(logits.dtype)
            signs = torch.full_like(logits, -1.0)
            signs[:, 0] = 1.0
            loss = -(F.logsigmoid(signs * logits) * keep).sum(1)
            return loss, logits
        # 2. hierarchical softmax: one binary decision per inner node, label = 1 - code (word2vec.c)
        points, codes = self.huffman_points[targets], self.huffman_codes[targets]  # [B, D]
        mask = self.path_mask(targets)
        logits = torch.bmm(self.weight[points], hidden.unsqueeze(2)).squeeze(2) * mask  # [B, D]
        loss = -(F.logsigmoid((1 - 2 * codes).to(logits.dtype) * logits) * mask).sum(1)
        return loss, logits

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every vocabulary word for hidden vectors `[..., d]` → `[..., V]`.

        Hierarchical softmax gives exact log-probabilities; negative sampling gives the logit h·v'_w, whose ranking
        is the model's prediction (the noise-contrastive objective does not normalise)."""
        if self.objective == "negative_sampling":
            return hidden @ self.weight.T
        node_scores = hidden @ self.weight.T  # [..., V-1]
        vocab_size, depth = self.huffman_points.shape
        flat = node_scores.reshape(-1, node_scores.shape[-1])  # [N, V-1]
        gathered = flat[:, self.huffman_points.reshape(-1)].view(-1, vocab_size, depth)  # [N, V, D]
        signs = (1 - 2 * self.huffman_codes).to(hidden.dtype)
        mask = self.path_mask(torch.arange(vocab_size, device=hidden.device))
        logp = (F.logsigmoid(signs * gathered) * mask).sum(-1)
        return logp.view(*node_scores.shape[:-1], vocab_size)


class Word2VecPreTrainedModel(PreTrainedModel):
    config_class = Word2VecConfig
    base_model_prefix = "word2vec"  # the heads' `get_input_embeddings` is transformers' default: the body's
    main_input_name = "input_ids"
    accepts_loss_kwargs = False
    _supports_sdpa = False
    _no_split_modules = []

    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):  # the only embedding here is the input-vector table
            # gensim 4: input vectors uniform in [-1/d, 1/d] (initializer_range 1.0); word2vec.c's is 0.5
            bound = self.config.initializer_range / self.config.vector_size
            init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, Word2VecOutputLayer):
            init.zeros_(module.weight)  # word2vec.c starts the output side at zero
            module.reset_buffers(self.config)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, *args, **kwargs):
        """Resize the input vectors (transformers) and the output layer; new words get count 0 (never a noise word,
        no Huffman path) until `config.word_counts` is updated."""
        old_counts = self.config.word_counts
        embeddings = super().resize_token_embeddings(new_num_tokens, *args, **kwargs)
        size = self.config.vocab_size
        if old_counts is not None:
            self.config.word_counts = (list(old_counts) + [0] * size)[:size]
        layer = getattr(self, "output_layer", None)
        if layer is not None:
            new_layer = Word2VecOutputLayer(self.config).to(layer.weight.device, layer.weight.dtype)
            rows = min(layer.weight.shape[0], new_layer.weight.shape[0])
            with torch.no_grad():
                new_layer.weight[:rows] = layer.weight[:rows]
            new_layer.reset_buffers(self.config)
            self.output_layer = new_layer
        return embeddings


class Word2VecModel(Word2VecPreTrainedModel):
    """The input vectors: `last_hidden_state[b, t]` is the vector of `input_ids[b, t]` (feature-extraction)."""

    def __init__(self, config: Word2VecConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.vector_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        r"""input_ids `[B, T]` (any shape) → `BaseModelOutput(last_hidden_state=[B, T, d])`; padding is not special:
        a word vector does not depend on its neighbours. `hidden_states` is `(vectors,)`: the one projection layer."""
        _check_kwargs(kwargs, type(self).__name__)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        _check_inputs(input_ids, attention_mask, self.config.vocab_size)
        vectors = self.embeddings(input_ids)
        output = BaseModelOutput(last_hidden_state=vectors, hidden_states=(vectors,) if output_hidden_states else None)
        return output if return_dict is not False else output.to_tuple()


class Word2VecForPreTraining(Word2VecPreTrainedModel):
    """The word2vec training objective (skip-gram or CBOW × negative sampling or hierarchical softmax).

    The output layer (output vectors or Huffman node vectors plus the tree) is saved with the model, so training
    continues after `from_pretrained`. The fast trainer in `hf_seq.models.word2vec.training_word2vec` applies word2vec.c's closed-form
    sparse updates to the same tensors; `forward` computes the same loss with autograd (Trainer / any optimizer).
    """

    def __init__(self, config: Word2VecConfig):
        super().__init__(config)
        self.word2vec = Word2VecModel(config)
        self.output_layer = Word2VecOutputLayer(config)
        self.post_init()

    def hidden_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`[B]` → input vectors `[B, d]`; `[B, C]` context windows → their mean (or sum) over `attention_mask`."""
        vectors = self.word2vec.embeddings(input_ids)
        if input_ids.dim() == 1:
            return vectors
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        mask = attention_mask.to(vectors.dtype).unsqueeze(-1)  # [B, C, 1]
        summed = (vectors * mask).sum(1)
        if self.config.cbow_mean:
            summed = summed / mask.sum(1).clamp(min=1.0)
        return summed

    def sample_negatives(self, shape, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = self.output_layer.noise_distribution
        flat = torch.multinomial(noise, int(np.prod(shape)), replacement=True, generator=generator)
        return flat.view(*shape)

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        negative_ids: torch.LongTensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Word2VecPreTrainingOutput | tuple:
        r"""
        input_ids (`[B]` or `[B, C]`): skip-gram: the word whose input vector predicts `labels` (word2vec.c feeds the
            context word and predicts the centre word); CBOW: the context window, padded, with `attention_mask`.
        labels (`[B]`): the predicted word.
        negative_ids (`[B, k]`, *optional*): noise words; drawn from `noise_distribution` when not given.
        """
        _check_kwargs(kwargs, type(self).__name__)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        vocab_size = self.config.vocab_size
        _check_inputs(input_ids, attention_mask if input_ids.dim() == 2 else None, vocab_size)
        if input_ids.dim() not in (1, 2):
            raise ValueError(f"input_ids must be [B] or [B, C], got shape {tuple(input_ids.shape)}")
        # 1. hidden vector: one input vector (skip-gram) or the context mean/sum (CBOW)
        hidden = self.hidden_vectors(input_ids, attention_mask)  # [B, d]
        if labels is None:
            output = Word2VecPreTrainingOutput(hidden_states=hidden)
            return output if return_dict is not False else output.to_tuple()
        if labels.shape != hidden.shape[:1]:
            raise ValueError(f"labels must have shape [{hidden.shape[0]}], got {tuple(labels.shape)}")
        _check_ids(labels, vocab_size, "labels")
        # 2. noise words
        if self.config.objective == "negative_sampling":
            if negative_ids is None:
                negative_ids = self.sample_negatives((labels.shape[0], self.config.negative))
            elif negative_ids.dim() != 2 or negative_ids.shape[0] != labels.shape[0]:
                raise ValueError(f"negative_ids must be [{labels.shape[0]}, k], got {tuple(negative_ids.shape)}")
            _check_ids(negative_ids, vocab_size, "negative_ids")
        # 3. objective
        loss, logits = self.output_layer.loss_and_logits(hidden, labels, negative_ids)
        output = Word2VecPreTrainingOutput(loss=loss.mean(), logits=logits, hidden_states=hidden)
        return output if return_dict is not False else output.to_tuple()


class Word2VecForMaskedLM(Word2VecPreTrainedModel):
    """CBOW as a fill-mask model: each position is predicted from the words within `config.window` around it.

    Padding (`attention_mask == 0`) and `<mask>` tokens are not used as context; words never seen in training
    (count 0, e.g. special tokens) are never predicted.
    """

    def __init__(self, config: Word2VecConfig):
        super().__init__(config)
        self.word2vec = Word2VecModel(config)
        self.output_layer = Word2VecOutputLayer(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        r"""input_ids `[B, T]` → logits `[B, T, V]`; `labels` `[B, T]` (-100 = ignore) gives a cross-entropy loss.
        `hidden_states` is `(input vectors, CBOW context vectors)`, each `[B, T, d]`."""
        _check_kwargs(kwargs, type(self).__name__)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
        _check_inputs(input_ids, attention_mask, self.config.vocab_size)
        if labels is not None:
            _check_ids(labels, self.config.vocab_size, "labels", ignore_index=-100)
            if not is_tracing(labels) and not bool((labels != -100).any()):
                raise ValueError("every entry of `labels` is -100 (ignored): there is no masked word to score.")
        batch, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        # 1. which positions may serve as context: real tokens that are not <mask>
        usable = attention_mask.bool()
        if self.config.mask_token_id is not None:
            usable = usable & (input_ids != self.config.mask_token_id)
        # 2. CBOW hidden vector of every position: its neighbours within the window, excluding itself
        pos = torch.arange(length, device=input_ids.device)
        distance = (pos[:, None] - pos[None, :]).abs()
        band = ((distance > 0) & (distance <= self.config.window)).to(torch.float32)  # [T, T]
        weights = band.unsqueeze(0) * usable.unsqueeze(1).to(torch.float32)  # [B, T, T]
        vectors = self.word2vec.embeddings(input_ids)  # [B, T, d]
        hidden = torch.bmm(weights.to(vectors.dtype), vectors)  # [B, T, d]
        if self.config.cbow_mean:
            hidden = hidden / weights.sum(-1, keepdim=True).clamp(min=1.0).to(vectors.dtype)
        # 3. score every word; never-seen words are ruled out
        logits = self.output_layer.log_probs(hidden)  # [B, T, V]
        if self.config.word_counts is not None:
            unseen = torch.tensor(self.config.word_counts, device=logits.device) == 0
            logits = logits.masked_fill(unseen, torch.finfo(logits.dtype).min)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        output = MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=(vectors, hidden) if output_hidden_states else None
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "Word2VecPreTrainedModel",
    "Word2VecModel",
    "Word2VecForPreTraining",
    "Word2VecForMaskedLM",
    "Word2VecPreTrainingOutput",
    "build_huffman_tree",
    "noise_distribution",
    "keep_probabilities",
]
