"""``python -m collapse.lm run|report ...``: the ``collapse lm`` subcommands without the ``collapse`` script.

Errors behave as in ``collapse``: one line ``python -m collapse.lm: error: <message>``
on standard error and exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys

from collapse.analysis.errors import CollapseError

PROG = "python -m collapse.lm"


class _OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    from collapse.lm.cli import register

    # prog "python -m" + subcommand "lm" makes usage lines read "python -m collapse.lm run ..."
    parser = _OneLineParser(prog="python -m", description="The language-model loop (see `collapse lm`).")
    sub = parser.add_subparsers(dest="command", parser_class=_OneLineParser, metavar="lm")
    sub.required = True
    register(sub)
    args = parser.parse_args(["lm", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except CollapseError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
