"""Deploying a bento to the configured target: a local server, or a container image."""

from __future__ import annotations

from pathlib import Path

from stackport.core.settings import DeploymentSettings
from stackport.serving.bento import BentoArchive
from stackport.serving.container import build_image
from stackport.serving.deployment import Deployment
from stackport.serving.local import serve_locally

DEPLOYERS = {"local": serve_locally, "container": build_image}


def deploy(
    archive: BentoArchive,
    model_name: str,
    model_version: str,
    settings: DeploymentSettings,
    bentoml_home: Path,
) -> Deployment:
    """Serve the bento locally or build its image, as `settings.target` says."""
    return DEPLOYERS[settings.target](archive, model_name, model_version, settings, bentoml_home)
