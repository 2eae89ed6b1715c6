"""What `POST /predict` answers for one text, for each task: a pydantic model per task.

Each model has the fields of the dataclass that the task's post-processor in
`textmodels.inference` returns, plus descriptions and bounds, so that the OpenAPI document of
a bento describes the output of the task it serves.
"""

from typing import Annotated

from pydantic import BaseModel, Field, NonNegativeInt

from textmodels.tasks import Task

Probability = Annotated[float, Field(ge=0, le=1)]


class ClassPrediction(BaseModel):
    """Single-label classification: the most probable label of a text."""

    label: str = Field(description="The most probable label.")
    score: Probability = Field(description="Its softmax probability.")


class MultilabelPrediction(BaseModel):
    """Multi-label classification: the labels whose probability reaches their threshold."""

    labels: list[str] = Field(
        description="The predicted labels, in the model's label order; possibly none."
    )
    scores: list[Probability] = Field(
        description="The sigmoid probability of each predicted label, in the order of `labels`."
    )


class Entity(BaseModel):
    """A named entity found in a text."""

    type: str = Field(description="The entity type, e.g. PER (tagged B-PER, I-PER).")
    score: Probability = Field(description="The mean probability of its words' tags.")
    start: NonNegativeInt = Field(
        description="Offset (in Unicode code points) of its first character in the text."
    )
    end: NonNegativeInt = Field(
        description="Offset just past its last character: text[start:end] is the entity."
    )
    text: str = Field(description="The entity as it is written in the text.")


class EntityPrediction(BaseModel):
    """Named-entity recognition: the entities of a text, in order of their position."""

    entities: list[Entity]


PREDICTION_MODELS: dict[Task, type[BaseModel]] = {
    Task.CLASSIFICATION: ClassPrediction,
    Task.MULTILABEL: MultilabelPrediction,
    Task.NER: EntityPrediction,
}


def prediction_model(task: str) -> type[BaseModel]:
    """The response model of one text's prediction for `task`.

    Raises:
        ValueError: The service has no response model for the task.
    """
    if Task(task) not in PREDICTION_MODELS:
        raise ValueError(f"The service has no response model for the {task} task.")
    return PREDICTION_MODELS[Task(task)]
