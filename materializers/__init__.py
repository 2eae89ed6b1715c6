"""ZenML materializers for the library's types; importing this package registers them.

ZenML registers its own materializers for DataFrames and pydantic models first, and a
materializer class registers itself only for a type without one, so those two replace
ZenML's explicitly: ZenML's compute no content hash (DataFrames) or load unchecked.
"""

import pandas as pd
from pydantic import BaseModel
from zenml.materializers.materializer_registry import materializer_registry

from materializers.benchmark_report import BenchmarkReportMaterializer
from materializers.bento import BentoArchiveMaterializer
from materializers.data_frame import DataFrameMaterializer
from materializers.drift_report import DriftReportPageMaterializer, DriftSummaryMaterializer
from materializers.evaluation_report import EvaluationReportMaterializer
from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.onnx_model import OnnxModelMaterializer
from materializers.pydantic_json import PydanticModelMaterializer
from materializers.quantization_report import QuantizationReportMaterializer
from materializers.study_report import StudyReportMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from materializers.validation_report import ValidationReportMaterializer

materializer_registry.register_and_overwrite_type(pd.DataFrame, DataFrameMaterializer)
materializer_registry.register_and_overwrite_type(BaseModel, PydanticModelMaterializer)

__all__ = [
    "BenchmarkReportMaterializer",
    "BentoArchiveMaterializer",
    "DataFrameMaterializer",
    "DriftReportPageMaterializer",
    "DriftSummaryMaterializer",
    "EvaluationReportMaterializer",
    "FineTunedModelMaterializer",
    "OnnxModelMaterializer",
    "PydanticModelMaterializer",
    "QuantizationReportMaterializer",
    "StudyReportMaterializer",
    "TokenizedDatasetMaterializer",
    "ValidationReportMaterializer",
]
