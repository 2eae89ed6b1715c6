"""A deployed bento: the record of a local server or of a built image, and how to use it."""

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
