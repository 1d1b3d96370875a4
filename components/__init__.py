"""KFP components: one folder per pipeline step, each a thin typed wrapper over one
``clipguard`` library function (``component.py`` + ``README.md``).

Every component runs on our own base image (``CLIPGUARD_IMAGE``; built from
``infra/images/Dockerfile.cpu``), which already has kfp and clipguard installed, hence
``install_kfp_package=False``. Config travels as a profile name plus a JSON object of
dotted overrides, so a component resolves exactly the config the CLI would.
"""

import os

BASE_IMAGE = os.environ.get("CLIPGUARD_IMAGE", "clipguard-cpu:0.1.0")
GPU_IMAGE = os.environ.get("CLIPGUARD_GPU_IMAGE", "clipguard-gpu:0.1.0")
COMPILE_TARGET = os.environ.get("CLIPGUARD_COMPILE_TARGET", "cpu")
"""``cpu`` (default) or ``gpu``: which cluster the pipelines are compiled for
(``python -m pipelines.compile --target gpu``; see ``pipelines/resources.py``)."""
if COMPILE_TARGET not in ("cpu", "gpu"):
    raise ValueError(f"CLIPGUARD_COMPILE_TARGET must be cpu or gpu, got {COMPILE_TARGET!r}")
