"""Run the ``nlsup`` CLI and SIGKILL it at one exact point, the way a breakpoint stops a debugger.

    python tests/killpoint.py FILE_SUFFIX:FUNCTION[=ARGUMENT_SUFFIX] N nlsup-arguments...

kills the process as the Nth call of FUNCTION (defined in a file whose path ends with FILE_SUFFIX, and whose
first argument, as a string, ends with ARGUMENT_SUFFIX when given) begins. A profiler hook only watches calls,
so the code under test runs unchanged; only where it dies is chosen.
"""

import os
import runpy
import signal
import sys


def main() -> None:
    target, nth, arguments = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
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
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.argv = ["nlsup", *arguments]
    sys.setprofile(hook)
    runpy.run_module("nlsup_kit.cli", run_name="__main__")


if __name__ == "__main__":
    main()
