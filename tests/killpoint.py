"""Run the ``nlsup`` CLI and SIGKILL it, or fill its disk, at one exact point, the way a breakpoint stops a
debugger.

    python tests/killpoint.py [--fill FILE] FILE_SUFFIX:FUNCTION[=ARGUMENT_SUFFIX] N nlsup-arguments...

kills the process as the Nth call of FUNCTION (defined in a file whose path ends with FILE_SUFFIX, and whose
first argument, as a string, ends with ARGUMENT_SUFFIX when given) begins; with ``--fill FILE``, instead of
dying there, it writes FILE until its disk has no byte left and goes on. A profiler hook only watches calls,
so the code under test runs unchanged; only where it dies, or where its disk fills, is chosen.
"""

import errno
import os
import runpy
import signal
import sys


def fill_disk(path: str) -> None:
    """Take every free byte of ``path``'s file system (what another program writing there would do)."""
    with open(path, "wb", buffering=0) as f:  # unbuffered: nothing left to flush, and fail, at close
        chunk = bytes(1 << 16)
        while True:
            try:
                f.write(chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]


def main() -> None:
    arguments = sys.argv[1:]
    filler = None
    if arguments[0] == "--fill":
        filler, arguments = arguments[1], arguments[2:]
    target, nth, arguments = arguments[0], int(arguments[1]), arguments[2:]
    where, _, argument = target.partition("=")
    file_suffix, function = where.rsplit(":", 1)
    calls = 0

    def hook(frame, event, _arg):
        nonlocal calls
        code = frame.f_code
        if event != "call" or code.co_name != function or not code.co_filename.endswith(file_suffix):
            return
        if argument and not str(frame.f_locals.get(code.co_varnames[0])).endswith(argument):
            return
        calls += 1
        if calls == nth and filler is None:
            os.kill(os.getpid(), signal.SIGKILL)
        if calls == nth:
            fill_disk(filler)

    sys.argv = ["nlsup", *arguments]
    sys.setprofile(hook)
    runpy.run_module("nlsup_kit.cli", run_name="__main__")


if __name__ == "__main__":
    main()
