"""Errors of the RCI service: a client's mistake carries its HTTP status (the service turns it
into a 4xx/503 response)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors


class ServingError(Exception):
    """An error the client caused or may retry; ``status`` is its HTTP status code."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST


class ClipNotFoundError(ServingError, LookupError):
    """Clip ids without cached features (404, naming the ids)."""

    status = HTTPStatus.NOT_FOUND

    def __init__(self, clip_ids: Sequence[str]) -> None:
        self.clip_ids = list(dict.fromkeys(clip_ids))
        shown = ", ".join(repr(c) for c in self.clip_ids[:10])
        more = f" (+{len(self.clip_ids) - 10} more)" if len(self.clip_ids) > 10 else ""
        super().__init__(f"no cached features for clip id(s) {shown}{more}")


class PayloadTooLargeError(ServingError):
    """An upload above ``serving.max_upload_bytes`` (413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnprocessableMediaError(ServingError):
    """An upload that is not a decodable video (422, with the decoder's reason)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class DisabledError(ServingError):
    """An endpoint whose backing piece is not configured (404: search without an index, media without encoders)."""

    status = HTTPStatus.NOT_FOUND


class NotReadyError(ServingError):
    """The model is still loading, or loading failed (503)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class IncompatibleModelError(ValueError):
    """Pieces that do not fit together (encoder versions, token widths, extraction settings)."""
