"""The RCI service: BentoML serving of the student over cached features, the index and uploads.

- :mod:`~clipguard.serving.service`: the ``@bentoml.service`` (``ClipGuard``): routes, adaptive
  batching, limits, the bento's image (imports BentoML; ``bentoml serve``/``bentoml build`` load it);
- :mod:`~clipguard.serving.runtime`: :class:`~clipguard.serving.runtime.ServingRuntime`, what the
  service does as plain library code: champion reload, scoring, search, uploads, built on
  :mod:`~clipguard.serving.model` (which student a URI names, loaded with its threshold),
  :mod:`~clipguard.serving.features` (feature sources: the feature table or Feast; the token
  reader), :mod:`~clipguard.serving.media` (the encoders for uploads) and
  :mod:`~clipguard.serving.errors` (client errors with their HTTP status);
- :mod:`~clipguard.serving.schemas`: request/response bodies;
- :mod:`~clipguard.serving.middleware`: the upload size limit (413 before a body is read);
- :mod:`~clipguard.serving.launch`: the ``bentoml serve`` command line and a local server process;
- :mod:`~clipguard.serving.package`: ``bentoml build`` of the service for a registered model version
  (the pipelines' ``package_bento`` step).

Nothing is imported here, so importing the package is cheap.
"""
