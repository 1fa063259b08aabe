"""The demonstrator server's one error type, carrying its HTTP status.

Every message is French and says what to fix; the app turns a
:class:`DemoError` into an HTML page or a JSON body, never a traceback.
"""

from __future__ import annotations


class DemoError(Exception):
    """An error a person can act on (bad upload, bad payload, model failure)."""

    status_code: int = 400

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
