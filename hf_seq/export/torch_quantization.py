"""int8 in PyTorch itself: `torch.ao.quantization.quantize_dynamic` on the recurrent and linear layers.

Weights become int8, activations are quantized on the fly (CPU only). The result lives in memory: hf-seq persists
models through `save_pretrained`/safetensors only (no pickles), so a quantized model is rebuilt from the float folder
at load time (`quantize_dynamic_int8(AutoModel….from_pretrained(folder))`).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def quantize_dynamic_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """A copy of `model` (eval mode) with nn.LSTM, nn.GRU and nn.Linear replaced by dynamically quantized int8
    modules. nn.RNN (Elman) has no quantized kernel in torch and stays float."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch nn.Module, got {type(model).__name__}")
    target = model if inplace else copy.deepcopy(model)
    target.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (it points to torchao)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(target, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8, inplace=True)


__all__ = ["quantize_dynamic_int8"]
