"""``hooknb`` command line: the terminal demo, the demo service."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hooknb",
        description="Logic Apps-style HTTP Webhook triggers and actions for Jupyter.",
    )
    parser.add_argument("--version", action="version", version=f"hooknb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="terminal walkthrough: trigger -> run -> webhook action pauses -> approval resumes it",
        description=(
            "Starts the demo service and an embedded hub (no Jupyter server, no browser), "
            "enables a webhook-triggered workflow, publishes an event, and prints the run's "
            "timeline as it pauses on an approval and resumes when the demo service approves."
        ),
    )
    demo.add_argument(
        "--approve-after",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="how long the demo approver waits before clicking Approve (default 1.5)",
    )
    demo.add_argument(
        "--reject", action="store_true", help="have the approver reject instead of approve"
    )

    service = commands.add_parser(
        "demo-service",
        help="run the demo webhook service alone (topics and approvals)",
    )
    service.add_argument("--host", default="127.0.0.1")
    service.add_argument("--port", type=int, default=8765)
    service.add_argument(
        "--auto-approve",
        type=float,
        default=None,
        metavar="SECONDS",
        help="approve every new approval automatically after SECONDS",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hooknb`` command."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .demo.walkthrough import run_walkthrough

        return run_walkthrough(approve_after=args.approve_after, reject=args.reject)
    if args.command == "demo-service":
        from .demo import serve

        serve(args.host, args.port, auto_approve_after=args.auto_approve)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
