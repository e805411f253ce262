from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_recurrent import (
    GRUForCausalLM,
    GRUModel,
    LSTMForCausalLM,
    LSTMModel,
    RecurrentCache,
    RecurrentForCausalLM,
    RecurrentModel,
    RecurrentPreTrainedModel,
    RNNForCausalLM,
    RNNModel,
)
