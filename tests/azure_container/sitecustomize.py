"""The simulated AzureML container's filesystem: its working directory `/app` is a folder.

ZenML's step entrypoint creates and enters `/app`, the working directory of the images it
builds, and downloads the pipeline's code there. A real container has its own `/app`; the
simulation (tests/azure_simulation.py) runs each step as a local process, so Python loads this
module at start-up (it is on the process's PYTHONPATH) and `/app` becomes the step's own folder,
`STACKPORT_SIMULATED_APP_DIR`.
"""

import os

_CONTAINER_WORKDIR = "/app"
_app_dir = os.environ["STACKPORT_SIMULATED_APP_DIR"]
_makedirs, _chdir = os.makedirs, os.chdir


def _makedirs_in_container(name, *args, **kwargs):
    return _makedirs(_app_dir if name == _CONTAINER_WORKDIR else name, *args, **kwargs)


def _chdir_in_container(path):
    return _chdir(_app_dir if path == _CONTAINER_WORKDIR else path)


os.makedirs = _makedirs_in_container
os.chdir = _chdir_in_container
