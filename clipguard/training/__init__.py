"""RCI training: MatchLM2Lite's two-stage recipe (§3.4) on clipguard's data and features.

* :mod:`clipguard.training.data` — pair manifests, multi-task labels, the student's
  in-memory feature bank, class-balanced sampling;
* :mod:`clipguard.training.media` — decoded media for the teacher (cached once);
* :mod:`clipguard.training.teacher` — stage 1 for MatchLM (:func:`~clipguard.training.teacher.train_teacher`);
* :mod:`clipguard.training.teacher_cache` — the frozen teacher's outputs, computed once
  (:func:`~clipguard.training.teacher_cache.cache_teacher`);
* :mod:`clipguard.training.student` — stage 1 and stage 2 (distillation) for MatchLite
  (:func:`~clipguard.training.student.train_student`);
* :mod:`clipguard.training.loop` / :mod:`clipguard.training.checkpoint` — the shared epoch
  loop and its resumable, pickle-free checkpoints.

Submodules are imported explicitly (they pull in torch and, for the teacher,
transformers), so importing this package is cheap.
"""
