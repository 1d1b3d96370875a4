"""Reproduced-content identification at serving time (MatchLM2Lite §5.1).

- :func:`~clipguard.rci.score.score_pairs`: a CSV of (query, candidate) video files ->
  student scores, one row per input row, per-row errors for unreadable files;
- :func:`~clipguard.rci.search.search_video` / :class:`~clipguard.rci.search.VideoSearcher`:
  a video -> top-k similar clips from the FAISS index, each scored by the student;
- :func:`~clipguard.rci.student.load_student`: the student from the registry
  (``models:/clipguard-student@champion``) or a directory, with threshold and lineage.

Heavy libraries (torch, transformers, mlflow, faiss) are imported by the submodules only.
"""
