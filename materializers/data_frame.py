"""ZenML materializer for pandas DataFrames: ZenML's Parquet materializer, content-hashed.

ZenML's own pandas materializer computes no content hash, so every `load_data` run would
give the raw dataset a new identity and every later step a cache miss. This one hashes the
frame's logical content (column names and dtypes, the index, every value), not its Parquet
bytes, which also record the pandas and pyarrow versions: an unchanged source read again has
the same hash, on any version, and a one-byte change another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType
from zenml.integrations.pandas.materializers.pandas_materializer import PandasMaterializer

from materializers.base import VerifiedLoad


class DataFrameMaterializer(VerifiedLoad, PandasMaterializer):
    """Stores a DataFrame as Parquet (with ZenML's visualizations); hashed by its content."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (pd.DataFrame,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def read(self, data_type: type[Any]) -> pd.DataFrame:
        """Read the Parquet file as ZenML's pandas materializer does."""
        return PandasMaterializer.load(self, data_type)

    def compute_content_hash(self, data: pd.DataFrame) -> str:
        """sha256 of the frame's column names and dtypes, its index and every value.

        Cells holding arrays (lists read back from Parquet) hash as the lists they were, and
        every missing value (NaN, None, NA, NaT) as one null: Parquet reads a text column's NaN
        back as None.
        """
        digest = hashlib.sha256()
        header = {
            "columns": [str(column) for column in data.columns],
            "dtypes": [str(dtype) for dtype in data.dtypes],
            "index": data.index.tolist(),
        }
        digest.update(_json(header))
        for column in data.columns:
            digest.update(_json([_null_as_none(value) for value in data[column].tolist()]))
        return digest.hexdigest()


def _json(value: Any) -> bytes:
    """`value` as canonical JSON; arrays and numpy scalars as the Python values they hold."""
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, default=_plain, allow_nan=True
    ).encode()


def _null_as_none(value: Any) -> Any:
    """None for a missing scalar (NaN, None, NA, NaT); any other value as it is."""
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
