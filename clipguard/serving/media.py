"""Uploaded media for the service: the frozen encoders of the served feature version, to decode
and encode an uploaded video exactly like feature extraction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipguard.config import Config
from clipguard.features.store_format import read_manifest
from clipguard.serving.errors import IncompatibleModelError, UnprocessableMediaError

if TYPE_CHECKING:
    import torch

    from clipguard.encoders.bundle import EncoderBundle


log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class MediaEncoder:
    """The frozen encoders of the served encoder version, for uploaded videos."""

    bundle: EncoderBundle
    encoder_dir: Path
    version: str

    def encode(self, path: Path, text: str, cfg: Config) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """Tokens per modality and the clip embedding of the first ``media.clip_seconds`` of ``path``.

        Raises:
            UnprocessableMediaError: the file cannot be decoded (the decoder's reason).
        """
        from clipguard.rci.encode import EncodedClip, MediaRequest, encode_media

        encoded = encode_media([MediaRequest("upload", path.resolve(), title=text)], self.bundle, cfg, progress=False)["upload"]
        if not isinstance(encoded, EncodedClip):
            raise UnprocessableMediaError(
                f"not a decodable video: {encoded.reason}" + (f" ({encoded.detail})" if encoded.detail else "")
            )
        return dict(encoded.tokens), encoded.embedding


def load_media_encoder(
    cfg: Config, features_root: Path, encoder_version: str, encoder_model: str | None = None
) -> MediaEncoder | None:
    """The encoders for uploads: ``serving.encoder_dir``, else the one the features record, else
    ``<work_dir>/encoders/<encoder_version>``, else the registered encoder (``encoder_model``,
    the served student's link, or the one tagged ``encoder_version``), fetched there; None
    (media off) when none exists and none is configured.

    Raises:
        IncompatibleModelError: the encoders are another version than the features, or the
            features were extracted with other media settings than ``cfg``.
        FileNotFoundError: a configured ``serving.encoder_dir`` that is not an encoder directory.
    """
    from clipguard.encoders.bundle import EncoderBundle
    from clipguard.rci.encode import extraction_settings
    from clipguard.rci.student import resolve_encoder_dir

    manifest = read_manifest(features_root)
    configured = cfg.serving.encoder_dir or (
        manifest["encoder_dir"] if manifest.get("encoder_dir") and Path(manifest["encoder_dir"]).is_dir() else None
    )
    try:
        encoder_dir = resolve_encoder_dir(cfg, configured, encoder_version, encoder_model=encoder_model)
    except FileNotFoundError:
        if cfg.serving.encoder_dir:
            raise
        log.info("no encoders for encoder version %s: media endpoints are off", encoder_version)
        return None
    bundle, meta = EncoderBundle.load(encoder_dir, cfg)
    version = str(meta["version"])
    if version != encoder_version:
        raise IncompatibleModelError(f"{encoder_dir} is encoder {version}, the features are encoder {encoder_version}")
    stored, wanted = manifest.get("settings"), extraction_settings(cfg, version)
    if stored is not None and stored != wanted:
        diff = sorted(k for k in wanted if stored.get(k) != wanted[k])
        raise IncompatibleModelError(f"{features_root} was extracted with other settings ({', '.join(diff)}) than this config")
    return MediaEncoder(bundle, encoder_dir, version)
