"""Encoders: the frozen feature backbones and their self-supervised pretraining.

* :mod:`~clipguard.encoders.vision` — Swin over sampled frames (one token per frame) and the
  128-d clip-embedding head.
* :mod:`~clipguard.encoders.audio` — the Whisper encoder on log-mel features, pooled to a
  few audio tokens per second.
* :mod:`~clipguard.encoders.text` — the real all-MiniLM-L6-v2 (sentence-transformers) over
  title + OCR + ASR: token states and the sentence embedding.
* :mod:`~clipguard.encoders.bundle` — the three as one versioned, offline-loadable artifact.
* :mod:`~clipguard.encoders.pretrain` — MoCo / MoCo + CLIP pretraining and the copy-retrieval
  evaluation (with :mod:`~clipguard.encoders.augment`, :mod:`~clipguard.encoders.contrastive`,
  :mod:`~clipguard.encoders.cache`).
* :mod:`~clipguard.encoders.inputs` — accepted clips of a data root, decoded in batches.

Submodules are imported explicitly (they pull in torch and transformers), so importing
this package is cheap.
"""
