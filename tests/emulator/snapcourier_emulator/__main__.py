"""Command line: `python -m snapcourier_emulator serve --state-file PATH ...`."""

import argparse
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m snapcourier_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator until told to stop")
    serve.add_argument("--state-file", required=True, type=Path,
                       help="JSON file written (atomically) once the emulator is ready")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    serve.add_argument("--watch-pid", type=int, help="exit when this process dies")
    serve.add_argument("--stdin-lifeline", action="store_true",
                       help="exit when standard input reaches end of file")
    serve.add_argument("--seed", choices=["demo", "empty"], default="demo")
    serve.add_argument("--verbose", action="store_true", help="log every HTTP request to stderr")
    args = parser.parse_args()

    # moto reads these when it is imported or used: set them first.
    # MOTO_ACCOUNT_ID would override every request's account.
    if os.environ.pop("MOTO_ACCOUNT_ID", None) is not None:
        print("snapcourier_emulator: ignoring MOTO_ACCOUNT_ID", file=sys.stderr)
    os.environ["MOTO_RDS_SNAPSHOT_LIMIT"] = "100000"

    from .server import serve as run

    return run(args.state_file, args.port, args.seed, args.watch_pid, args.stdin_lifeline, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
