"""ZenML steps: thin wrappers that call the plain functions of `textmodels`.

Importing this package registers the project's materializers, so that no artifact falls back
to ZenML's cloudpickle materializer.
"""

import materializers  # noqa: F401  (registers the materializers)
