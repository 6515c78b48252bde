"""Run a command and report its own peak RSS.

A child forked from a large process inherits that process's high-water RSS
(Linux keeps ru_maxrss across fork and exec), so the bench starts each tool
from this small launcher and reads the tool's wait4 rusage here.
"""

from __future__ import annotations

import json
import os
import sys

pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(json.dumps({"peak_rss_kb": usage.ru_maxrss}) + "\n")
sys.exit(os.waitstatus_to_exitcode(status))
