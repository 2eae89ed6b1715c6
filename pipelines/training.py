"""The training pipeline, from labelled text to a promoted, quantized model version.

load → validate → split → tokenize → search → select → train → evaluate (and baseline) →
convert to ONNX (and optimize) → quantize (dynamic and static int8) → benchmark → register →
promote.
"""

from zenml import pipeline

from stackport.core.settings import (
    BenchmarkSettings,
    DataSettings,
    ExportSettings,
    HpoSettings,
    ModelSettings,
    PromotionSettings,
    QuantizationSettings,
    SplitSettings,
    TrainingSettings,
    ValidationSettings,
)
from stackport.release.registration import model_identity
from steps.benchmark_model import benchmark_model
from steps.convert_model import convert_model
from steps.evaluate_baseline import evaluate_baseline
from steps.evaluate_model import evaluate_model
from steps.load_data import load_data
from steps.promote_model import promote_model
from steps.quantize_model import quantize_model
from steps.register_model import register_model
from steps.search_hyperparameters import search_hyperparameters
from steps.select_hyperparameters import select_hyperparameters
from steps.split_data import split_data
from steps.tokenize_data import tokenize_data
from steps.train_model import train_model
from steps.validate_data import validate_data


@pipeline
def training_pipeline(
    data: DataSettings,
    validation: ValidationSettings,
    split: SplitSettings,
    model: ModelSettings,
    training: TrainingSettings,
    hpo: HpoSettings,
    promotion: PromotionSettings,
    export: ExportSettings,
    quantization: QuantizationSettings,
    benchmark: BenchmarkSettings,
) -> None:
    """Fine-tune a transformer on labelled text and register it in the Model Control Plane.

    Only `register_model` creates a Model Control Plane version, so a run that stops at
    validation (or anywhere before registration) creates none, and an unchanged re-run finds
    the version of its (cached) model instead of registering it again.

    Args:
        data: Where the data is and which columns to use.
        validation: Thresholds of the data checks.
        split: How to split data that brings no splits.
        model: Base model, windows, and the registered model's name (else the data set's).
        training: Fine-tuning hyper-parameters; the chosen trial overrides what it searched.
        hpo: The Optuna study: budget, pruner, storage, search space and selection rule.
        promotion: The gates a new version must pass to move to production.
        export: ONNX opset and the parity tolerance against PyTorch.
        quantization: Int8 quantization options and the accuracy gate's `max_metric_drop`.
        benchmark: How many test texts and repeats the inference benchmark times.
    """
    identity = model_identity(data, model)
    raw_dataset, load_report = load_data(data=data)
    validation_report = validate_data(raw_dataset, load_report, data=data, validation=validation)
    train_set, validation_set, test_set = split_data(
        raw_dataset, validation_report, data=data, split=split
    )
    tokenized_dataset = tokenize_data(train_set, validation_set, test_set, data=data, model=model)
    hpo_study = search_hyperparameters(
        tokenized_dataset,
        model=model,
        training=training,
        hpo=hpo,
        study_prefix=hpo.study_name or identity.name,
    )
    selected_training = select_hyperparameters(hpo_study, training=training, hpo=hpo)
    fine_tuned = train_model(tokenized_dataset, model=model, training=selected_training)
    model_evaluation = evaluate_model(fine_tuned, tokenized_dataset)
    baseline_evaluation = evaluate_baseline(train_set, test_set, tokenized_dataset)
    onnx_model, onnx_model_optimized = convert_model(
        fine_tuned, tokenized_dataset, validation_set, export=export
    )
    onnx_model_int8, onnx_model_static_int8, quantization_report = quantize_model(
        onnx_model,
        onnx_model_optimized,
        train_set,
        validation_set,
        test_set,
        quantization=quantization,
    )
    variants = (onnx_model, onnx_model_optimized, onnx_model_int8, onnx_model_static_int8)
    benchmark_report = benchmark_model(fine_tuned, *variants, test_set, benchmark=benchmark)
    registered = register_model(
        fine_tuned,
        model_evaluation,
        baseline_evaluation,
        *variants,
        quantization_report,
        benchmark_report,
        identity=identity,
    )
    promote_model(
        fine_tuned, model_evaluation, baseline_evaluation, test_set, registered, promotion=promotion
    )
