"""Runs one session command and records its exit code.

Started by the local executor as the leader of the session's process group, with stdout/stderr
already pointing at the session log. It keeps no reference to the server, so the session survives
a server restart, and the exit code file lets a restarted server learn how it ended. This file is
executed by path and imports nothing from haneul, to keep launch latency low.
"""

import os
import signal
import subprocess
import sys


def main() -> int:
    exit_file = sys.argv[1]
    command = sys.argv[3:]  # argv[2] is "--"
    try:
        child = subprocess.Popen(command)
    except (FileNotFoundError, PermissionError) as exc:
        print(f"haneul: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        _record(exit_file, 127)
        return 127

    def forward(signum, _frame):
        # the whole group already got it when the platform stops a session; this covers a
        # signal sent to the launcher alone
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    _record(exit_file, code)
    return code if code >= 0 else 128 - code


def _record(path, code):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(str(code))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
