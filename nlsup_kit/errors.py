"""The kit's user-facing exceptions.

Anything a user can fix (a bad file, a typo in a setting, a missing download) raises `NlsupError` with a
single line that names the file and line or the setting. The CLI prints it as ``error: ...`` and exits 2.
A run stopped by a signal raises `Stopped`, printed as its line with the shell's status for the signal.
"""

import signal


class NlsupError(Exception):
    """A problem the user can fix; the message is one line and says where to look."""

    def _render_traceback_(self) -> list[str]:
        """In Jupyter (IPython asks for this hook) the error shows as its one line, not a traceback."""
        return [f"{type(self).__name__}: {self}"]


class Stopped(NlsupError):
    """A run stopped by a signal after writing its checkpoint; ``exit_status`` is the shell's 128 + signal."""

    def __init__(self, signum: int, step: int, total_steps: int, checkpoint: object, repeats: int = 0,
                 is_main: bool = True):
        self.signum, self.step, self.total_steps, self.checkpoint = signum, step, total_steps, checkpoint
        self.repeats, self.is_main = repeats, is_main  # under torchrun every process stops; one prints the line
        self.exit_status = 128 + signum
        super().__init__(self.line(IN_PYTHON))

    def line(self, continue_with: str) -> str:
        name = signal.Signals(self.signum).name
        ignored = f" ({self.repeats} more signal{'s' if self.repeats > 1 else ''} while stopping ignored)" \
            if self.repeats else ""
        return (f"stopped by {name} at step {self.step} of {self.total_steps}: checkpoint in {self.checkpoint}"
                f"{ignored}; continue with {continue_with}")


IN_PYTHON = "train(..., resume=True); a notebook cell that trains with reuse=True continues when run again"


def at_line(path: object, line_number: int, problem: str) -> NlsupError:
    """Build the standard ``FILE:LINE: problem`` error."""
    return NlsupError(f"{path}:{line_number}: {problem}")


def read_back(path, read, what: str, hint: str):
    """``read(path)`` for a file the kit wrote earlier (weights, training state, recipe, log): missing, empty,
    truncated or garbled, it becomes one line naming the file, what it should hold, and what to do."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise NlsupError(f"{path}: missing; it should hold {what} ({hint})")
    if path.stat().st_size == 0:
        raise NlsupError(f"{path}: empty; it should hold {what} ({hint})")
    try:
        return read(path)
    except NlsupError:
        raise
    except Exception as err:  # noqa: BLE001 - every reader fails its own way; the file is what the user can fix
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise NlsupError(f"{path}: not readable as {what}, damaged or truncated ({reason}) ({hint})") from None


def count(n: int, noun: str) -> str:
    """``1 class``, ``2 classes``: user-facing counts read as English (regular plurals only)."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"
