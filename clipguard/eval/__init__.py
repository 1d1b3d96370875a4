"""RCI evaluation: metrics from scores, per-subset metrics, model evaluation and ablations.

* :mod:`clipguard.core.metrics` — AP, R@P80, F1 at a validation threshold, PR-curve PNGs;
* :mod:`clipguard.eval.subsets` — the pair subsets (deciding modality, held-out edits and
  sources, hard negatives) and their metrics;
* :mod:`clipguard.eval.evaluate` — :func:`~clipguard.eval.evaluate.evaluate_student` and
  :func:`~clipguard.eval.evaluate.evaluate_teacher` (JSON + PNG + MLflow);
* :mod:`clipguard.eval.ablation` — the paper's ablations over seeds
  (:func:`~clipguard.eval.ablation.run_ablations`).

Submodules are imported explicitly, so importing this package is cheap.
"""
