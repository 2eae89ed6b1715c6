"""The AzureML scoring script: `init()` and `run()`, called by the AzureML inference server.

A managed online deployment runs it with `azmlinfsrv` (PyPI `azureml-inference-server-http`,
installed by the deployment's environment only): `init()` once per worker, with the registered
model in `AZUREML_MODEL_DIR`; `run()` for each request to `/score`, with the raw request
(`@rawhttp`), so that the body's size, type and encoding are checked before it is parsed, as the
bento checks them. The work is `stackport.serving.scoring.Scorer`'s.

The server puts only its app root on `sys.path`, which on AzureML is the folder above the
code folder, so the code folder (two levels above this file) is added first.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[2]
if str(CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(CODE_ROOT))

from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from stackport.serving.scoring import Scorer, read_scoring_config  # noqa: E402

MODEL_DIR_VARIABLE = "AZUREML_MODEL_DIR"
scorer: Scorer | None = None


def init() -> None:
    """Load the registered model and warm its session up (the server is ready after this).

    The served-input log's last records are written when the worker exits.
    """
    global scorer
    scorer = Scorer(Path(os.environ[MODEL_DIR_VARIABLE]), read_scoring_config(CODE_ROOT))
    atexit.register(scorer.close)


@rawhttp
def run(request: AMLRequest) -> AMLResponse:
    """Answer one `/score` request: the predictions, or a 4xx naming the problem."""
    response = scorer.score(
        request.method,
        request.headers.get("Content-Type"),
        request.headers.get("Content-Length"),
        request.stream.read,
    )
    return AMLResponse(response.body, response.status, json_str=True)
