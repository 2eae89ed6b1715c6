"""ZenML materializers for the textmodels types; importing this package registers them."""

from materializers.evaluation_report import EvaluationReportMaterializer
from materializers.fine_tuned_model import FineTunedModelMaterializer
from materializers.study_report import StudyReportMaterializer
from materializers.tokenized_dataset import TokenizedDatasetMaterializer
from materializers.validation_report import ValidationReportMaterializer

__all__ = [
    "EvaluationReportMaterializer",
    "FineTunedModelMaterializer",
    "StudyReportMaterializer",
    "TokenizedDatasetMaterializer",
    "ValidationReportMaterializer",
]
