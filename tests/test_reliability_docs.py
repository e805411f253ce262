"""Issue 9, multi-process docs: the accelerate configs shipped in configs/accelerate parse with accelerate's own
loader and say what docs/multi_process.md says they do."""

import os

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "name, kind",
    [("fsdp", DistributedType.FSDP), ("deepspeed", DistributedType.DEEPSPEED),
     ("ddp_cpu_2proc", DistributedType.MULTI_GPU)],
)
def test_accelerate_config_parses(name, kind):
    path = os.path.join(REPO, "configs", "accelerate", f"{name}.yaml")
    config = load_config_from_file(path)
    assert config.distributed_type == kind
    assert config.num_processes == 2 and config.use_cpu is False
    if name == "fsdp":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
        wrapped = config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
        from hf_seq.models.transformer import TransformerPreTrainedModel

        assert wrapped == TransformerPreTrainedModel._no_split_modules
    if name == "deepspeed":
        assert config.deepspeed_config["zero_stage"] == 2


def test_docs_name_the_cpu_pitfall_and_the_checkpoint_helper():
    text = open(os.path.join(REPO, "docs", "multi_process.md"), encoding="utf-8").read()
    assert "--cpu --num_processes 2" in text and "silently runs ONE process" in text
    assert "torchrun --nproc_per_node 2" in text and "accelerate launch --multi_gpu --num_processes 2" in text
    assert "latest_complete_checkpoint" in text
