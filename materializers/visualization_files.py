"""A base for our materializers: visualization files written next to the artifact's data."""

from __future__ import annotations

import os
from typing import ClassVar

from zenml.materializers.base_materializer import BaseMaterializer


class VisualizationFilesMaterializer(BaseMaterializer):
    """Writes visualization files into the artifact's folder through the artifact store."""

    SKIP_REGISTRATION: ClassVar[bool] = True

    def write_visualization(self, filename: str, content: str | bytes) -> str:
        """Write one visualization file next to the data and return its URI."""
        uri = os.path.join(self.uri, filename)
        with self.artifact_store.open(uri, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
        return uri
