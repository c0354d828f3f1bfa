"""``bench report`` (the argument handling moves here from the report package)."""

from bench.report.report_old import add_arguments, main

__all__ = ["add_arguments", "main"]
