"""The kit's one user-facing exception.

Anything a user can fix (a bad file, a typo in a setting, a missing download) raises `NlsupError` with a
single line that names the file and line or the setting. The CLI prints it as ``error: ...`` and exits 2.
"""


class NlsupError(Exception):
    """A problem the user can fix; the message is one line and says where to look."""

    def _render_traceback_(self) -> list[str]:
        """In Jupyter (IPython asks for this hook) the error shows as its one line, not a traceback."""
        return [f"NlsupError: {self}"]


def at_line(path: object, line_number: int, problem: str) -> NlsupError:
    """Build the standard ``FILE:LINE: problem`` error."""
    return NlsupError(f"{path}:{line_number}: {problem}")


def count(n: int, noun: str) -> str:
    """``1 class``, ``2 classes``: user-facing counts read as English (regular plurals only)."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"
