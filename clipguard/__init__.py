"""clipguard: MLOps for multimodal video content moderation.

The library does the work (data, media, encoders, models, training, index, evaluation,
registry, monitoring, serving); KFP components in ``components/`` only wire it.
Heavy libraries are imported inside the functions that need them so that the CLI starts fast.
"""

__version__ = "0.1.0"
