"""`python -m tests.loadtests slack|discord|socket-mode [--json]` from a source checkout (needs tests/fakes)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.loadtests", description=__doc__)
    parser.add_argument("target", choices=("slack", "discord", "socket-mode"))
    parser.add_argument("--runs", type=int, default=3, help="socket-mode: runs per client")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    from bot.settings import Settings

    settings = Settings()
    if args.target == "socket-mode":
        from tests.loadtests.socket_mode import run_socket_mode_bench

        result = run_socket_mode_bench(runs=args.runs)
    elif args.target == "slack":
        from tests.loadtests.slack import run_slack_bench

        result = run_slack_bench(settings)
    else:
        from tests.loadtests.discord import run_discord_bench

        result = run_discord_bench(settings)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
