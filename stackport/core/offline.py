"""Keeping every library offline: models and data load from local paths and installed packages."""

import os

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # Each process tokenizes in the thread that runs its model; no tokenizer thread pool.
    "TOKENIZERS_PARALLELISM": "false",
}


def stay_offline() -> None:
    """Set the offline environment variables the environment does not set already.

    Call it before importing transformers, tokenizers or huggingface_hub.
    """
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
