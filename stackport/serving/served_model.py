"""Settings of the service and the identity of the model a bento serves.

A bento carries `configs/deploy.yaml` (the deployment settings it was built with; the service
reads its `parameters.service` section) and `configs/served_model.json` (written by the build).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import Field

from stackport.core.settings import ServiceSettings, StrictSettings

DEPLOY_CONFIG = Path("configs") / "deploy.yaml"
SERVED_MODEL = Path("configs") / "served_model.json"


class ServedModel(StrictSettings):
    """Which Model Control Plane version a bento serves, and its BentoML model of variants."""

    name: str
    version: str
    task: str
    bentoml_model: str = Field(description="Tag of the BentoML model holding the ONNX files.")
    variants: dict[str, dict[str, float]] = Field(
        description="The deployable ONNX variants the bento carries (a folder each in the "
        "BentoML model), with each variant's own test metrics."
    )


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
