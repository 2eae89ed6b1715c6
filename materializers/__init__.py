"""ZenML materializers for the library's types; importing this package registers them."""

from materializers.benchmark_report import BenchmarkReportMaterializer
from materializers.evaluation_report import EvaluationReportMaterializer
from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.onnx_model import OnnxModelMaterializer
from materializers.quantization_report import QuantizationReportMaterializer
from materializers.study_report import StudyReportMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from materializers.validation_report import ValidationReportMaterializer

__all__ = [
    "BenchmarkReportMaterializer",
    "EvaluationReportMaterializer",
    "FineTunedModelMaterializer",
    "OnnxModelMaterializer",
    "QuantizationReportMaterializer",
    "StudyReportMaterializer",
    "TokenizedDatasetMaterializer",
    "ValidationReportMaterializer",
]
