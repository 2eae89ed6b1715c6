"""Names shared across layers: the pipelines' steps and artifacts, and the columns of tables.

A step's name is its function's name (ZenML's rule), and an artifact's name is the one its
step's `Annotated` output declares; the pipelines, the run summary and the deployment read
runs by these names, so they are written once, here.
"""

from enum import StrEnum


class Step(StrEnum):
    """The steps of the pipelines."""

    LOAD_DATA = "load_data"
    VALIDATE_DATA = "validate_data"
    SPLIT_DATA = "split_data"
    TOKENIZE_DATA = "tokenize_data"
    SEARCH_HYPERPARAMETERS = "search_hyperparameters"
    SELECT_HYPERPARAMETERS = "select_hyperparameters"
    TRAIN_MODEL = "train_model"
    EVALUATE_MODEL = "evaluate_model"
    EVALUATE_BASELINE = "evaluate_baseline"
    CONVERT_MODEL = "convert_model"
    QUANTIZE_MODEL = "quantize_model"
    BENCHMARK_MODEL = "benchmark_model"
    REGISTER_MODEL = "register_model"
    PROMOTE_MODEL = "promote_model"
    BUILD_BENTO = "build_bento"
    DEPLOY_BENTO = "deploy_bento"
    RESOLVE_MONITORED_MODEL = "resolve_monitored_model"
    BUILD_DRIFT_REFERENCE = "build_drift_reference"
    LOAD_SERVED_INPUTS = "load_served_inputs"
    DETECT_DRIFT = "detect_drift"


class Artifact(StrEnum):
    """The output artifacts of the steps."""

    RAW_DATASET = "raw_dataset"
    LOAD_REPORT = "load_report"
    VALIDATION_REPORT = "validation_report"
    TRAIN_SET = "train_set"
    VALIDATION_SET = "validation_set"
    TEST_SET = "test_set"
    TOKENIZED_DATASET = "tokenized_dataset"
    HPO_STUDY = "hpo_study"
    SELECTED_TRAINING = "selected_training"
    MODEL = "model"
    MODEL_EVALUATION = "model_evaluation"
    BASELINE_EVALUATION = "baseline_evaluation"
    ONNX_MODEL = "onnx_model"
    ONNX_MODEL_OPTIMIZED = "onnx_model_optimized"
    ONNX_MODEL_INT8 = "onnx_model_int8"
    ONNX_MODEL_STATIC_INT8 = "onnx_model_static_int8"
    QUANTIZATION_REPORT = "quantization_report"
    BENCHMARK_REPORT = "benchmark_report"
    MODEL_VERSION = "model_version"
    PROMOTION_DECISION = "promotion_decision"
    BENTO = "bento"
    BENTO_DEPLOYMENT = "bento_deployment"
    MONITORED_MODEL = "monitored_model"
    DRIFT_REFERENCE = "drift_reference"
    SERVED_INPUTS = "served_inputs"
    SERVED_WINDOW = "served_window"
    DRIFT_SUMMARY = "drift_summary"
    DRIFT_REPORT = "drift_report"


# The column of a tokenized table giving each row's example (its position in the split): the
# rows of one example are the windows a long text or sentence was split into.
EXAMPLE_ID_COLUMN = "example_id"
# The column of a raw dataset naming each row's split, when the source brings its splits.
SPLIT_COLUMN = "split"
SPLIT_NAMES = ("train", "validation", "test")
