"""The base of the project's materializers: checked loads and visualization files.

Every materializer here loads through `VerifiedLoad`: an artifact that cannot be read (a write
that was interrupted, a file truncated or changed since) is refused with an
`ArtifactIntegrityError` naming it, and so is one whose content no longer has the content
hash ZenML recorded when it was saved (ZenML hands that hash over when a step loads an input).
Each materializer also computes that content hash, so that ZenML's cache keys follow an
input's content, not its artifact ID: an unchanged source read again lets every later step
come from the cache.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.materializers.base_materializer import BaseMaterializer


class ArtifactIntegrityError(ValueError):
    """An artifact's files cannot be read, or no longer hold what was saved."""


class VerifiedLoad:
    """`load` = `read`, refusing unreadable artifacts and content that is not what was saved."""

    uri: str
    expected_content_hash: str | None

    def read(self, data_type: type[Any]) -> Any:
        """Read the artifact's data (what `load` does in other materializers)."""
        raise NotImplementedError

    def load(self, data_type: type[Any]) -> Any:
        """The artifact's data, checked.

        Raises:
            ArtifactIntegrityError: It cannot be read, or its content hash differs from the
                one recorded when it was saved.
        """
        try:
            data = self.read(data_type)
        except ArtifactIntegrityError:
            raise
        except Exception as error:  # noqa: BLE001 - any reader error means the same thing
            raise ArtifactIntegrityError(
                f"Artifact {self.uri} cannot be read ({type(error).__name__}: {error}): its "
                "write was interrupted or its files changed since. It is not used; run the "
                "step that produced it again (`--no-cache`)."
            ) from error
        expected = self.expected_content_hash
        if expected is not None and self.compute_content_hash(data) != expected:
            raise ArtifactIntegrityError(
                f"Artifact {self.uri} does not hold what was saved (its content hash differs "
                "from the one recorded): it is not used; run the step that produced it again "
                "(`--no-cache`)."
            )
        return data


class StackportMaterializer(VerifiedLoad, BaseMaterializer):
    """Checked loads, and visualization files written next to the artifact's data."""

    SKIP_REGISTRATION: ClassVar[bool] = True

    def write_visualization(self, filename: str, content: str | bytes) -> str:
        """Write one visualization file next to the data and return its URI."""
        uri = os.path.join(self.uri, filename)
        with self.artifact_store.open(uri, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
        return uri
