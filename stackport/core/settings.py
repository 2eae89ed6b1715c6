"""Every setting of the pipelines, on one strict base: the sections of a run configuration.

The sections of `configs/train.yaml` are the parameters of `training_pipeline` (`data`,
`validation`, `split`, `model`, `training`, `hpo`, `promotion`, `export`, `quantization`,
`benchmark`); those of `configs/deploy.yaml` are `model` (`ModelSelection`), `service` and
`deployment`. A field's default here is the only default: the shipped configs set only what
differs from it, and a section left out of a config behaves exactly as the default run.
Unknown keys are refused, so that a misspelt key is an error instead of a silent default.
`docs/configuration.md` is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from stackport.core.tasks import DEFAULT_TASK, Task


class StrictSettings(BaseModel):
    """Settings that refuse unknown keys, so that a misspelt key in a config is an error."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- training: data and model


class DataSettings(StrictSettings):
    """Where the labelled data is, what task it is for and which columns hold what.

    For `ner`, the text column holds each sentence's tokens and the label column its tags
    (CoNLL files are read into these two columns).
    """

    source: str = Field(
        "bundled:rotten-tomatoes",
        description="`bundled:<name>` (`python run.py --list-data`), or a local path or fsspec "
        "URI of a CSV/JSONL/Parquet file or a folder. `--data`.",
    )
    task: Task = Field(DEFAULT_TASK, description="What to train (a folder of stackport/tasks/).")
    text_column: str = Field(
        "text", description="Column holding the text (`ner`: the token list). `--text-column`."
    )
    label_column: str = Field(
        "label",
        description="Column holding the label (`multilabel`: labels; `ner`: tags). "
        "`--label-column`.",
    )
    label_delimiter: str = Field(
        "|", min_length=1, description="multilabel: separates the labels of a text in a CSV cell."
    )


class ValidationSettings(StrictSettings):
    """What a dataset must satisfy to be trained on.

    For `ner`, the labels are entity types (`PER`, not `B-PER`), an example of a type is one
    entity mention, and the text-length bounds do not apply.
    """

    labels: list[str] | None = Field(
        None, description="The declared label set (`ner`: entity types); null: any labels."
    )
    min_classes: int = Field(2, ge=1, description="Fewest distinct labels (`ner`: entity types).")
    min_examples_per_class: int = Field(
        10, ge=1, description="Fewest examples of each label (`ner`: mentions)."
    )
    min_text_chars: int = Field(
        1, ge=0, description="Shortest text, in characters (not for `ner`)."
    )
    max_text_chars: int = Field(
        100_000, ge=1, description="Longest text, in characters (not for `ner`)."
    )
    allow_empty_label_sets: bool = Field(
        False, description="multilabel: a text may carry no label at all."
    )
    max_shared_texts: int = Field(
        0,
        ge=0,
        description="Distinct texts that may occur in two given splits (e.g. the short "
        "headlines CoNLL-2003's official splits share); each one leaks test data into training.",
    )


class SplitSettings(StrictSettings):
    """How to split data that does not come with its own splits."""

    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share of the data carved out for validation."
    )
    test_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share of the data carved out for test."
    )
    seed: int = Field(42, description="Seed of the split.")
    max_rows: dict[Literal["train", "validation", "test"], PositiveInt] = Field(
        default_factory=dict,
        description="A subset: at most this many rows of a split (seeded sample), e.g. "
        "{train: 2000}; a split not named keeps all its rows.",
    )


class ModelSettings(StrictSettings):
    """The base model to fine-tune, how it reads texts, and the model it becomes.

    The name, description and tags of the Model Control Plane model follow the data set
    (`rotten-tomatoes-sentiment` for `bundled:rotten-tomatoes`, `<file stem>-<task>` for a
    file) unless they are set here.
    """

    base_model: str | None = Field(
        None, description="Local Hugging Face model folder; null: the bundled MiniLM-L6. `--model`."
    )
    max_length: int = Field(128, ge=8, le=512, description="Tokens per window of a text.")
    max_windows: int = Field(
        1,
        ge=1,
        le=64,
        description="classification, multilabel: a longer text is read as up to this many "
        "consecutive windows of max_length tokens (the rest is cut) and predicted by the mean "
        "of their logits; training draws one window per text per epoch. 1: truncate. "
        "ner always reads every window.",
    )
    name: str | None = Field(
        None, description="Model name in the Model Control Plane; null: from the data set."
    )
    description: str | None = Field(
        None,
        description="Description of the model in the Model Control Plane; null: from the data set.",
    )
    tags: list[str] | None = Field(
        None, description="Tags of the model in the Model Control Plane; null: from the data set."
    )


class TrainingSettings(StrictSettings):
    """Hyper-parameters of one fine-tuning run."""

    learning_rate: float = Field(
        1e-4, gt=0, description="Peak learning rate (AdamW, linear decay after warm-up)."
    )
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    epochs: int = Field(1, ge=1, description="Most epochs; early stopping may end sooner.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="Share of the steps spent warming the learning rate up."
    )
    early_stopping_patience: int = Field(
        2, ge=1, description="Epochs without a better selection metric before stopping."
    )
    freeze_embeddings: bool = Field(
        True,
        description="Keep the word-embedding matrix as the base model has it (every layer "
        "above it trains): a step costs about a quarter less on CPU, for no loss measured on "
        "the default data (docs/benchmarks.md).",
    )
    num_layers: int | None = Field(
        None,
        ge=1,
        description="Encoder layers of the model: the base model's first this many (a "
        "shallower model predicts faster); null: all of its layers.",
    )
    checkpoint_steps: int | None = Field(
        100,
        ge=1,
        description="Also checkpoint every this many steps inside an epoch, so that a run "
        "killed in the middle of one resumes at most this many steps back (every epoch's end "
        "is checkpointed); null: at the epochs' ends only.",
    )
    seed: int = Field(42, description="Seed of initialisation, shuffling and dropout.")


# ---------------------------------------------------------------- training: search


class FloatRange(StrictSettings):
    """Bounds of a float hyper-parameter."""

    low: float = Field(description="Lowest value.")
    high: float = Field(description="Highest value.")
    log: bool = Field(False, description="Sample on a log scale.")


class IntRange(StrictSettings):
    """Bounds of an integer hyper-parameter."""

    low: int = Field(description="Lowest value.")
    high: int = Field(description="Highest value.")


class SearchSpace(StrictSettings):
    """What the study may vary; a parameter set to null keeps its `training:` value."""

    learning_rate: FloatRange | None = Field(
        FloatRange(low=5e-5, high=3e-4, log=True),
        description="Range of `training.learning_rate`.",
    )
    batch_size: list[int] | None = Field(
        None,
        description="Choices of `training.batch_size`; null: not searched (smaller batches "
        "win short trials but make the final training slower).",
    )
    weight_decay: FloatRange | None = Field(
        FloatRange(low=0.0, high=0.1), description="Range of `training.weight_decay`."
    )
    warmup_ratio: FloatRange | None = Field(
        FloatRange(low=0.0, high=0.2), description="Range of `training.warmup_ratio`."
    )
    epochs: IntRange | None = Field(
        None, description="Range of `training.epochs`; null: not searched."
    )
    num_layers: list[PositiveInt] | None = Field(
        None,
        min_length=1,
        description="Choices of `training.num_layers`, e.g. [6, 4, 3]; the latency of each "
        "depth is measured once, on its fp32 ONNX export (`hpo.selection`). null: not searched.",
    )


PrunerName = Literal["hyperband", "successive_halving", "median", "threshold", "none"]
SelectionRule = Literal["best", "fastest_within"]


class HpoSettings(StrictSettings):
    """The Optuna study before the final training: budget, pruning, storage, trials' data."""

    n_trials: int = Field(
        2,
        ge=0,
        description="Finished (completed or pruned) trials the study holds: a run adds only "
        "those it lacks; 0 skips the search.",
    )
    timeout_minutes: float | None = Field(
        8, gt=0, description="No new trial starts after this many minutes; null: no limit."
    )
    study_name: str | None = Field(
        None,
        description="Prefix of the Optuna study's name, which ends in a fingerprint of what "
        "makes trials comparable (data, base model, search space, seed); the same inputs "
        "resume the same study in `storage`. null: the model's name.",
    )
    storage: str = Field(
        "sqlite:///runs/optuna.db",
        description="Optuna storage URL; a study of the same name there is resumed.",
    )
    seed: int = Field(42, description="Seed of the TPE sampler (a resumed study adds its trials).")
    pruner: PrunerName = Field(
        "hyperband",
        description="`hyperband`, `successive_halving`, `median`, `threshold` or `none`.",
    )
    prune_below: float = Field(0.0, description="`threshold` pruner: prune a value below this.")
    pruner_warmup_epochs: int = Field(0, ge=0, description="Epochs before a trial can be pruned.")
    trial_epochs: int | None = Field(
        1, ge=1, description="Epochs per trial; null: as sampled (or `training.epochs`)."
    )
    trial_train_fraction: float = Field(
        0.2, gt=0, le=1, description="Share of the training split each trial trains on."
    )
    search_space: SearchSpace = Field(
        default_factory=SearchSpace, description="What the trials vary (below)."
    )
    selection: SelectionRule = Field(
        "best",
        description="Which completed trial the final training takes: `best`, the highest "
        "validation metric; `fastest_within`, the one of the fastest depth (measured latency "
        "of its `num_layers`) among those within `selection_epsilon` of the best, ties to the "
        "higher metric.",
    )
    selection_epsilon: float = Field(
        0.01,
        ge=0,
        description="`fastest_within`: how far (absolute) below the best trial's validation "
        "metric a trial may be and still be chosen.",
    )


# ---------------------------------------------------------------- training: release


class PromotionSettings(StrictSettings):
    """Thresholds every gate checks; all gates must pass for a promotion."""

    metric: str | None = Field(
        None, description="Test metric the gates compare; null: the task's selection metric."
    )
    min_metric: float | None = Field(
        None, description="The new model's metric must reach this; null: no floor."
    )
    max_gap_to_baseline: float = Field(
        0.01, description="It may trail the TF-IDF baseline by at most this much."
    )
    min_delta: float = Field(0.0, description="It must beat production by at least this much.")
    stage: str = Field("production", description="The stage a promoted version moves to.")


# ---------------------------------------------------------------- training: ONNX


class OnnxVariant(StrEnum):
    """The forms of a model's ONNX graph the training pipeline builds.

    Every variant that keeps the fp32 model's accuracy is deployable; a bento carries them all
    and serves the one that is fastest on the machine it runs on (`service.runtime`).
    """

    FP32 = "fp32"
    """As exported by Optimum (ONNX Runtime fuses some ops when it loads it)."""
    FP32_OPTIMIZED = "fp32-optimized"
    """fp32 with ONNX Runtime's transformer fusions applied ahead of time (`ORTOptimizer`)."""
    DYNAMIC_INT8 = "dynamic-int8"
    """Int8 weights; activations quantized on the fly, one scale per batch."""
    STATIC_INT8 = "static-int8"
    """Int8 weights and activations (QDQ), activation ranges calibrated on training texts."""


class ExportSettings(StrictSettings):
    """How to export the fine-tuned model to ONNX and how closely it must match PyTorch."""

    optimization_level: Literal[1, 2] = Field(
        2,
        description="ONNX Runtime transformer optimizations of the `fp32-optimized` variant "
        "(`ORTOptimizer`): 1 basic and extended graph fusions, 2 also the transformer ones "
        "(attention, layer norm, GELU).",
    )
    opset: int | None = Field(
        None, ge=14, description="ONNX opset; null: Optimum's default for the architecture."
    )
    parity_tolerance: float = Field(
        1e-4, gt=0, description="Largest |ONNX - PyTorch| logit difference allowed."
    )
    parity_samples: int = Field(
        64, ge=1, description="Validation texts (a seeded sample) the parity check runs."
    )


# Ops whose int8 versions cost transformer accuracy for little speed stay in float in static
# quantization: normalization, GELU (and the Erf, Div, Mul and Add it is exported as), softmax,
# and the residual Adds whose outputs LayerNormalization reads.
ACCURACY_SENSITIVE_OP_TYPES = (
    "LayerNormalization",
    "SkipLayerNormalization",
    "Gelu",
    "BiasGelu",
    "FastGelu",
    "Erf",
    "Softmax",
    "Add",
    "Mul",
    "Div",
)


class QuantizationSettings(StrictSettings):
    """How to quantize the fp32 ONNX model to int8 (both variants), and how much they may lose."""

    per_channel: bool = Field(
        True,
        description="One scale per output channel of each weight, rather than one per tensor.",
    )
    weight_type: Literal["QInt8", "QUInt8"] = Field(
        "QInt8", description="`QInt8` or `QUInt8` weights."
    )
    calibration_samples: int = Field(
        128, ge=1, description="Training texts that calibrate activation ranges (static only)."
    )
    static_excluded_op_types: list[str] = Field(
        default_factory=lambda: list(ACCURACY_SENSITIVE_OP_TYPES),
        description="Op types static quantization leaves in float.",
    )
    max_metric_drop: float = Field(
        0.005,
        ge=-1,
        le=1,
        description="Largest drop (absolute) of the task's validation metric (macro_f1; "
        "entity_f1 for ner) from fp32 that still makes an int8 variant deployable.",
    )


class BenchmarkSettings(StrictSettings):
    """How many test texts the inference benchmark times, and how often."""

    max_texts: int = Field(256, ge=1, description="Test texts used (a seeded sample).")
    latency_texts: int = Field(
        32, ge=1, description="Texts timed one at a time (batch 1) in each repeat."
    )
    batch_size: int = Field(32, ge=2, description="Batch size of the throughput runs.")
    repeats: int = Field(2, ge=1, description="Timed passes over the texts per runtime.")
    warmup_batches: int = Field(2, ge=0, description="Untimed batches run first per runtime.")
    threads: int | None = Field(None, ge=1, description="Threads per runtime; null: all cores.")
    seed: int = Field(42, description="Seed of the sample of test texts.")


# ---------------------------------------------------------------- deployment


class ModelSelection(StrictSettings):
    """Which Model Control Plane version to deploy."""

    name: str | None = Field(
        None,
        description="The Model Control Plane model; null: the model of the latest training "
        "run. `--model-name`.",
    )
    version: str = Field(
        "production",
        description="A stage (production, staging, latest) or a version name. `--model-version`.",
    )


class BatchingSettings(StrictSettings):
    """Greedy batching: the requests that queued while a batch ran are the next batch."""

    max_batch_size: int = Field(32, ge=1, description="Most texts predicted in one batch.")
    concurrent_batches: int = Field(
        2,
        ge=1,
        description="Batches a worker predicts at the same time, a thread each: while one "
        "batch is tokenized or answered, the other runs in ONNX Runtime.",
    )
    pin_threads: bool = Field(
        True,
        description="Run each batch's thread on a core of its own, at a lower priority than "
        "the worker's event loop (Linux; when each batch has one ONNX Runtime thread and "
        "every worker's batches fit the cores, one each).",
    )
    max_latency_ms: int = Field(
        5000,
        ge=1,
        description="Latency budget of a request: one the worker could not serve within it "
        "gets a 503 with `Retry-After` as it arrives (or, once queued, from the batching).",
    )


class RequestLimits(StrictSettings):
    """What one request may hold; larger requests are refused with a 4xx."""

    max_texts: int = Field(32, ge=1, description="Texts per request.")
    max_text_chars: int = Field(20_000, ge=1, description="Characters per text.")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Bytes of the request body.")


RuntimeChoice = Literal["auto", "fp32", "fp32-optimized", "dynamic-int8", "static-int8"]


class RequestLogSettings(StrictSettings):
    """The served-input log: each predicted text's features, as Parquet files of each worker.

    A background thread writes them; a full queue or an unwritable path drops records (and
    counts them) and never fails or slows a request.
    """

    enabled: bool = Field(True, description="Record each predicted text's features.")
    path: str | None = Field(
        None,
        description="Folder of the Parquet files: a local path (`~` is expanded) or an fsspec "
        "URI (e.g. `az://<container>/request-log`); null: `request-log` in the ZenML config "
        "directory (set when the deployment pipeline builds the bento).",
    )
    texts: bool = Field(
        True,
        description="Keep each text itself (for text drift); false keeps only its features.",
    )
    max_file_bytes: int = Field(
        32 << 20, ge=1024, description="A file is closed and a new one started past this size."
    )
    max_file_seconds: float = Field(
        60,
        gt=0,
        description="... or once it is this old: a record is readable at most this long after "
        "its request.",
    )
    max_queued_batches: int = Field(
        1000, ge=1, description="Predicted batches waiting to be written; more are dropped."
    )


class ServiceSettings(StrictSettings):
    """How the service runs: its ONNX variant, processes, threads, batching and limits."""

    runtime: RuntimeChoice = Field(
        "auto",
        description="The ONNX variant served: `auto` times every deployable variant of the "
        "bento on warm-up batches at start-up and serves the one that takes the least CPU "
        "time; a variant's name pins it (it must be deployable).",
    )
    workers: int = Field(
        1,
        ge=1,
        description="Server processes, each with its own sessions. Each accepts connections as "
        "it can, so several split them unevenly: one queues everything where it can batch it.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="ONNX Runtime intra-op threads per batch; null: the cores shared among "
        "every batch predicted at once (cores / (workers × batching.concurrent_batches)).",
    )
    timeout_s: float = Field(60, gt=0, description="Longest time a request may take.")
    access_log: bool = Field(
        False,
        description="Log a line per HTTP request (BentoML's access log) in the server log; "
        "`/metrics` counts requests without it.",
    )
    metrics: bool = Field(
        True,
        description="BentoML's Prometheus metrics at `/metrics`: requests and their latency "
        "by endpoint and status.",
    )
    tracing: bool = Field(
        False,
        description="An OpenTelemetry span per request, exported as BentoML's `tracing` "
        "configuration says (`BENTOML_CONFIG`); it costs throughput.",
    )
    batching: BatchingSettings = Field(
        default_factory=BatchingSettings, description="Greedy batching (below)."
    )
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Request limits.")
    request_log: RequestLogSettings = Field(
        default_factory=RequestLogSettings, description="The served-input log (below)."
    )

    def threads_per_batch(self, cores: int) -> int:
        """`threads`, or the `cores` shared among every batch the workers predict at once."""
        return self.threads or max(1, cores // (self.workers * self.batching.concurrent_batches))


ContainerEngine = Literal["docker", "podman", "buildah", "nerdctl"]


class ProbeSettings(StrictSettings):
    """An AzureML liveness or readiness probe of the scoring container (`GET /`)."""

    initial_delay_s: int = Field(10, ge=1, description="Seconds before the first probe.")
    period_s: int = Field(10, ge=1, description="Seconds between probes.")
    timeout_s: int = Field(2, ge=1, description="Seconds a probe may take.")
    failure_threshold: int = Field(30, ge=1, description="Failed probes that count as down.")
    success_threshold: int = Field(1, ge=1, description="Passed probes that count as up.")


class AzureMLSettings(StrictSettings):
    """`target: azureml`: the managed online endpoint and its deployment.

    The workspace comes from the azure stack's settings (`AZURE_SUBSCRIPTION_ID`,
    `AZURE_RESOURCE_GROUP`, `AZURE_WORKSPACE`, in config.env or the environment).
    """

    endpoint_name: str | None = Field(
        None,
        description="The endpoint (3-32 letters, digits and hyphens, unique in its Azure "
        "region); null: from the model's name.",
    )
    instance_type: str = Field(
        "Standard_DS2_v2", description="VM size of each instance (billed while it runs)."
    )
    instance_count: int = Field(1, ge=1, description="Instances of the deployment.")
    request_timeout_ms: int = Field(
        5000, ge=1, le=180_000, description="Longest time AzureML waits for one scoring request."
    )
    max_concurrent_requests_per_instance: int = Field(
        1, ge=1, description="Requests an instance handles at once; more wait in AzureML's queue."
    )
    scale_type: Literal["default", "target_utilization"] = Field(
        "default",
        description="default: `instance_count` instances; target_utilization: between "
        "`min_instances` and `max_instances` by CPU use.",
    )
    min_instances: int = Field(1, ge=1, description="target_utilization: fewest instances.")
    max_instances: int = Field(1, ge=1, description="target_utilization: most instances.")
    target_utilization_percentage: int = Field(
        70, ge=1, le=100, description="target_utilization: the CPU use it scales to."
    )
    polling_interval_s: int = Field(
        60, ge=1, description="target_utilization: seconds between scaling decisions."
    )
    liveness_probe: ProbeSettings = Field(
        default_factory=ProbeSettings, description="Restarts an instance that stops answering."
    )
    readiness_probe: ProbeSettings = Field(
        default_factory=ProbeSettings, description="Routes requests only to a ready instance."
    )
    base_image: str = Field(
        "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest",
        description="The environment's CPU base image; the conda file adds Python and the "
        "scoring packages.",
    )


class DeploymentSettings(StrictSettings):
    """Where and how a model version is deployed: a bento, or an AzureML online endpoint."""

    target: Literal["local", "container", "azureml"] = Field(
        "local",
        description="local: `bentoml serve` in the background; container: OCI image; "
        "azureml: a managed online endpoint.",
    )
    host: str = Field("127.0.0.1", description="Interface the local server listens on.")
    port: int = Field(3000, ge=1, le=65535, description="Port of the local server.")
    startup_timeout_s: float = Field(180, gt=0, description="Wait this long for /readyz.")
    bentoml_home: str | None = Field(
        None, description="BentoML store; null: `bentoml` in the ZenML config directory."
    )
    image_tag: str | None = Field(None, description="container: image tag; null: the bento tag.")
    container_engine: ContainerEngine | None = Field(
        None,
        description="container: the `bentoml containerize` backend; null: the first of "
        "docker, podman, buildah and nerdctl that works here (`<engine> info`).",
    )
    azureml: AzureMLSettings = Field(
        default_factory=AzureMLSettings, description="target: azureml (below)."
    )


# ---------------------------------------------------------------- monitoring


class MonitorSettings(StrictSettings):
    """What the monitor compares: a model version's training reference and its served inputs.

    The reference is a seeded sample of the version's train split with the version's own
    predictions on it; the served inputs are a window of the request log. Evidently tests each
    feature for drift; the data set has drifted when at least `drift_share` of them have.
    """

    model_name: str | None = Field(
        None,
        description="The Model Control Plane model; null: the model of the latest training "
        "run. `--model-name`.",
    )
    model_version: str = Field(
        "production", description="A stage or a version name. `--model-version`."
    )
    request_log: str | None = Field(
        None,
        description="Where the service writes its log (`service.request_log.path`); null: "
        "`request-log` in the ZenML config directory.",
    )
    last_records: int | None = Field(
        1000, ge=1, description="The window: the newest this many records; null: all."
    )
    since: datetime | None = Field(
        None, description="The window: only records from this time on (ISO 8601); null: any."
    )
    min_records: int = Field(
        50, ge=2, description="Fewer served records in the window give no verdict."
    )
    reference_rows: int = Field(
        1000, ge=2, description="Train-split texts (a seeded sample) in the reference."
    )
    seed: int = Field(42, description="Seed of the reference sample.")
    drift_share: float = Field(
        0.5, gt=0, le=1, description="Share of drifted features at which the data has drifted."
    )
    texts: bool = Field(
        True,
        description="Test the texts themselves for drift too (a domain classifier), when the "
        "log holds them.",
    )
    retrain_on_drift: bool = Field(
        False,
        description="When drift is detected, start the training pipeline with `train_config`.",
    )
    train_config: str = Field(
        "configs/train.yaml",
        description="The training configuration a drift-triggered run uses (its data source).",
    )
