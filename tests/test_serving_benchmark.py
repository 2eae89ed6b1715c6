"""`benchmarks/serving.py`: the service settings of each bento it serves."""

import pydantic
import pytest

from benchmarks.serving import service_settings


def test_overrides_set_dotted_keys_over_the_defaults_without_a_request_log():
    settings = service_settings("workers=4,batching.concurrent_batches=1")

    assert (settings.workers, settings.batching.concurrent_batches) == (4, 1)
    assert settings.batching.max_batch_size == 32  # untouched defaults stay
    assert settings.runtime == "auto"
    assert settings.request_log.path is None


def test_no_overrides_pin_the_runtime_given():
    assert service_settings("", "fp32").runtime == "fp32"


def test_an_unknown_key_is_refused():
    with pytest.raises(pydantic.ValidationError, match="batching.max_batch"):
        service_settings("batching.max_batch=8")
