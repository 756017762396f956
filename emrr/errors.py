"""Errors a user can fix: one line each, exit status 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a file, a YAML path or an argument that the user must correct.

    ``str()`` is the whole one-line message: ``FILE: at PATH: what was expected``.
    """

    exit_status = 2

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None):
        self.file = file
        self.path = path
        self.detail = message
        parts = []
        if file:
            parts.append(str(file))
        if path is not None:
            parts.append(f"at {path or '(top level)'}")
        parts.append(message)
        # One line, whatever the input held: line breaks in a key or value are shown escaped.
        text = ": ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text)
