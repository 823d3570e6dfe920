"""A stop signal is a checkpoint. Preemptible machines, SLURM at its time limit, ``docker stop`` and Colab send
SIGTERM, a terminal's Ctrl-C and Jupyter's interrupt send SIGINT. While a run trains, either becomes a request
that the run loop honours between two updates: it finishes the update it is in, writes a checkpoint as every
save is written (whole or absent, :mod:`nlsup_kit.checkpoint`), and raises :class:`nlsup_kit.errors.Stopped`, which the CLI turns
into one line and status 128 + the signal (143, 130), so a scheduler that requeues failed jobs requeues it.
Under torchrun the processes agree on the step (the largest request over processes, every step), so they all
stop after the same update and the checkpoint is the same as at any other save.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nlsup_kit import distributed

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """The first stop signal received while :meth:`listening`; later ones are counted and otherwise ignored,
    so a second Ctrl-C cannot cut the save short (SIGKILL still can, and the previous save stays whole)."""

    def __init__(self) -> None:
        self.signum = 0
        self.repeats = 0

    def _note(self, signum: int, _frame) -> None:  # a handler only sets numbers: printing here could re-enter I/O
        if self.signum:
            self.repeats += 1
        else:
            self.signum = signum

    @contextmanager
    def listening(self) -> Iterator[StopRequest]:
        """The stop signals as requests inside the block, the previous handlers back after it. Only the main
        thread may set handlers: elsewhere (a training thread) signals keep their usual effect."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._note)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def agreed(self) -> int:
        """The signal every process stops for now (0: go on); a collective under torchrun, called every step."""
        return distributed.max_over_processes(self.signum)
