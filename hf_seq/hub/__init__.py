"""Everything between a trained model and the Hub: publishing a complete folder (`publishing`), model cards from
templates (`cards`, templates in `hf_seq/model_cards/`), and checked loading of saved folders (`loading`)."""

from .cards import ModelCardError, build_model_card
from .loading import CheckpointError, check_tokenizer_matches, load_checked
from .publishing import (
    PublishError,
    RegisteredClass,
    class_by_name,
    clean_generation_config,
    entry_for_folder,
    entry_for_model,
    find_model_dir,
    prepare_hub_folder,
    publish,
    registered_classes,
    write_model_card,
)

__all__ = [
    "CheckpointError", "ModelCardError", "PublishError", "RegisteredClass", "build_model_card",
    "check_tokenizer_matches", "class_by_name", "clean_generation_config", "entry_for_folder", "entry_for_model", "find_model_dir",
    "load_checked", "prepare_hub_folder", "publish", "registered_classes", "write_model_card",
]  # fmt: skip
