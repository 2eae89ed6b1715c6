"""The Model Control Plane side of registration: one version per model and what it serves.

A training run registers a version only for a model artifact and deployable ONNX variants
that no version of the model holds yet. An unchanged re-run, whose `train_model` comes from
the cache and hands on the same model artifact, finds the version that artifact was
registered as and registers nothing new, so the Model Control Plane never holds two versions
of one trained model serving the same variants. A re-run whose accuracy gate lets other
variants through (or whose variants changed) registers a new version of the same weights:
an existing version, perhaps in production, never changes what it serves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from zenml import log_metadata
from zenml.client import Client
from zenml.model.utils import link_artifact_version_to_model_version
from zenml.models import ArtifactVersionResponse, ModelVersionResponse

from stackport.release.registration import ModelIdentity, served_forms

# The version's metadata key holding the ID of its fine-tuned model artifact.
MODEL_ARTIFACT_KEY = "model_artifact_id"
VERSIONS_SEARCHED = 50


class RegisteredVersion(BaseModel):
    """The model version a training run's model is registered as.

    Attributes:
        name: The Model Control Plane model.
        version: The version's name.
        number: The version's number.
        id: The version's ID.
        created: False when an earlier run registered this very model artifact already.
    """

    name: str
    version: str
    number: int
    id: str
    created: bool


def version_holding(
    model_name: str, model_artifact_id: str, served: dict[str, str] | None = None
) -> ModelVersionResponse | None:
    """The latest version of the model registered for this model artifact, if any.

    With `served` (`served_forms` of a version's metadata), only a version that serves
    exactly those variants.
    """
    versions = Client().list_model_versions(
        model_name_or_id=model_name, sort_by="desc:number", size=VERSIONS_SEARCHED
    )
    for version in versions.items:
        if version.run_metadata.get(MODEL_ARTIFACT_KEY) != model_artifact_id:
            continue
        if served is None or served_forms(version.run_metadata) == served:
            return version
    return None


def register_version(
    identity: ModelIdentity,
    model_artifact: ArtifactVersionResponse,
    artifacts: list[ArtifactVersionResponse],
    metadata: dict[str, Any],
) -> RegisteredVersion:
    """The version of this model artifact serving these variants: found, or created and filled.

    Args:
        identity: The model's name, description and tags (created if missing).
        model_artifact: The fine-tuned model artifact the version is of.
        artifacts: Every artifact to link to a new version (the model's among them).
        metadata: The new version's metadata (`stackport.release.registration`).
    """
    client = Client()
    existing = version_holding(identity.name, str(model_artifact.id), served_forms(metadata))
    if existing is not None:
        return _registered(identity.name, existing, created=False)
    try:
        client.get_model(identity.name)
    except KeyError:
        client.create_model(
            name=identity.name, description=identity.description, tags=identity.tags
        )
    version = client.create_model_version(identity.name, tags=identity.tags)
    for artifact in artifacts:
        link_artifact_version_to_model_version(artifact, version)
    log_metadata(
        {**metadata, MODEL_ARTIFACT_KEY: str(model_artifact.id)},
        model_name=identity.name,
        model_version=version.name,
    )
    return _registered(identity.name, version, created=True)


def _registered(name: str, version: ModelVersionResponse, created: bool) -> RegisteredVersion:
    return RegisteredVersion(
        name=name, version=version.name, number=version.number, id=str(version.id), created=created
    )
