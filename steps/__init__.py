"""ZenML steps: one per file, each a few lines of glue over the plain functions of `stackport`.

Importing this package registers the project's materializers, so that no artifact falls back
to ZenML's cloudpickle materializer.
"""

import materializers  # noqa: F401  (registers the materializers)
