"""The console script's entry point: Ctrl-C is caught from the first moment.

``lakeguard.cli`` and what it imports take tens of milliseconds to load; a
Ctrl-C then would end in Python's traceback, as no handler exists yet. This
module imports nothing but ``sys`` before it sets one up.
"""

import sys


def main() -> None:
    try:
        from lakeguard.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("lakeguard: error: interrupted: nothing was changed\n")
        raise SystemExit(130) from None
    cli_main()
