"""Errors a user can fix: one line each, exit status 2, never a traceback."""

from __future__ import annotations

MAX_LINE = 600  # characters of an error line


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
        # One line, whatever the input held: line breaks in a key or value are shown escaped, and a
        # line of a few hundred characters at most (a 2 MB value quoted whole helps nobody).
        text = ": ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
        if len(text) > MAX_LINE:
            text = text[: MAX_LINE - 25] + " ... (message shortened)"
        super().__init__(text)
