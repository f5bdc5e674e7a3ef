"""``hooknb`` command line: the terminal demo, the demo service, the tutorials in JupyterLab."""

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

    lab = commands.add_parser(
        "lab",
        help="the tutorials: the demo service and JupyterLab on notebooks/",
        description=(
            "Starts the demo service (port 8765, or a free one if busy) and JupyterLab with the "
            "hooknb extension on the tutorials; kernels get HOOKNB_DEMO_URL. Prints both URLs; "
            "Ctrl-C stops both. Other arguments (or everything after --) go to Jupyter."
        ),
    )
    from .lab import add_arguments as add_lab_arguments

    add_lab_arguments(lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hooknb`` command."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # only `hooknb lab` passes arguments on (to Jupyter)
        if args.command != "lab":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.jupyter_args = [*unknown, *args.jupyter_args]
    if args.command == "demo":
        from .demo.walkthrough import run_walkthrough

        return run_walkthrough(approve_after=args.approve_after, reject=args.reject)
    if args.command == "demo-service":
        from .demo import serve

        serve(args.host, args.port, auto_approve_after=args.auto_approve)
        return 0
    if args.command == "lab":
        from .lab import main as lab_main

        return lab_main(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
