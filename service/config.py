"""Settings of the service and the identity of the model a bento serves.

A bento carries `configs/deploy.yaml` (the deployment settings it was built with; the service
reads its `parameters.service` section) and `configs/served_model.json` (written by the build).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEPLOY_CONFIG = Path("configs") / "deploy.yaml"
SERVED_MODEL = Path("configs") / "served_model.json"


class StrictSettings(BaseModel):
    """Settings that refuse unknown keys, so that a misspelt key in a config is an error."""

    model_config = ConfigDict(extra="forbid")


class BatchingSettings(StrictSettings):
    """Adaptive batching: requests arriving together are predicted in one batch."""

    max_batch_size: int = Field(32, ge=1, description="Most texts predicted in one batch.")
    max_latency_ms: int = Field(
        5000, ge=1, description="Latency budget of a request; one that would exceed it gets 503."
    )


class RequestLimits(StrictSettings):
    """What one request may hold; larger requests are refused with a 4xx."""

    max_texts: int = Field(32, ge=1, description="Texts per request.")
    max_text_chars: int = Field(20_000, ge=1, description="Characters per text.")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Bytes of the request body.")


class ServiceSettings(StrictSettings):
    """How the service runs: processes, ONNX Runtime threads, batching and request limits."""

    workers: int = Field(1, ge=1, description="Server processes, each with its own session.")
    threads: int | None = Field(
        None, ge=1, description="ONNX Runtime intra-op threads per worker; null: cores / workers."
    )
    timeout_s: float = Field(60, gt=0, description="Longest time a request may take.")
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    limits: RequestLimits = Field(default_factory=RequestLimits)


class ServedModel(StrictSettings):
    """Which Model Control Plane version a bento serves, and its BentoML model."""

    name: str
    version: str
    task: str
    bentoml_model: str = Field(description="Tag of the BentoML model holding the ONNX files.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Its test metrics.")


def read_service_settings(source_root: Path) -> ServiceSettings:
    """The `parameters.service` section of `configs/deploy.yaml` under `source_root`."""
    config = yaml.safe_load((source_root / DEPLOY_CONFIG).read_text())
    return ServiceSettings.model_validate(config["parameters"]["service"])


def read_served_model(source_root: Path) -> ServedModel:
    """The model a bento serves, from `configs/served_model.json` under `source_root`.

    Raises:
        FileNotFoundError: Outside a bento, where the build has not written the file.
    """
    path = source_root / SERVED_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the service runs from a bento built by the deployment "
            "pipeline (steps/build_bento.py), e.g. `bentoml serve <bento tag>`."
        )
    return ServedModel.model_validate(json.loads(path.read_text()))
