"""A deployed model: a local server, a built image or an AzureML endpoint, and how to use it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from stackport.core.settings import ContainerEngine

EXAMPLE_REQUEST = '{"texts": ["A gripping story, and the cast is terrific."]}'


class Deployment(BaseModel):
    """A deployed bento: the URL and process of a local server, or the built image."""

    model_name: str
    model_version: str
    bento_tag: str
    target: Literal["local", "container"]
    url: str | None = None
    pid: int | None = None
    process_started: float | None = Field(
        None, description="The process's start time (epoch seconds): tells a reused PID apart."
    )
    log_file: str | None = None
    image: str | None = None
    engine: ContainerEngine | None = Field(None, description="The engine that built the image.")


def usage(deployment: Deployment) -> str:
    """What to tell the user: where the service is and how to call it, or the image built."""
    if deployment.url is None:
        runner = "podman" if deployment.engine == "buildah" else deployment.engine
        return (
            f"Built image {deployment.image} of bento {deployment.bento_tag} with "
            f"{deployment.engine}.\n  {runner} run --rm -p 3000:3000 {deployment.image}"
        )
    return (
        f"Serving {deployment.model_name} version {deployment.model_version} "
        f"(bento {deployment.bento_tag}) at {deployment.url} (PID {deployment.pid}).\n"
        f"  curl -s -X POST {deployment.url}/predict -H 'Content-Type: application/json' \\\n"
        f"    -d '{EXAMPLE_REQUEST}'\n"
        f"  Metadata: {deployment.url}/metadata   Log: {deployment.log_file}"
    )


class EndpointDeployment(BaseModel):
    """A model version on an AzureML managed online endpoint (never its key)."""

    model_name: str
    model_version: str
    target: Literal["azureml"] = "azureml"
    endpoint: str
    scoring_uri: str | None
    deployment: str = Field(description="The deployment that takes all the traffic.")
    traffic: dict[str, int] = Field(description="Each deployment's share of the traffic, in %.")
    model_asset: str = Field(description="The model asset, `azureml:<name>:<version>`.")
    environment: str = Field(description="The environment, `azureml:<name>:<version>`.")
    replaced: list[str] = Field(description="The deployments it replaced (now deleted).")


def endpoint_usage(deployment: EndpointDeployment) -> str:
    """Where the endpoint answers and how to call it with its key (read, never stored, here)."""
    replaced = f" (replaced {', '.join(deployment.replaced)})" if deployment.replaced else ""
    return (
        f"Serving {deployment.model_name} version {deployment.model_version} on AzureML endpoint "
        f"{deployment.endpoint}, deployment {deployment.deployment}{replaced}, traffic "
        f"{deployment.traffic}.\n"
        f"  KEY=$(az ml online-endpoint get-credentials -n {deployment.endpoint} "
        "--query primaryKey -o tsv)\n"
        f'  curl -s -X POST {deployment.scoring_uri} -H "Authorization: Bearer $KEY" \\\n'
        f"    -H 'Content-Type: application/json' -d '{EXAMPLE_REQUEST}'\n"
        f"  Delete it (it bills while it runs): python run.py --pipeline undeploy"
    )
