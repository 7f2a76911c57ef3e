"""The quickstart (`make run`): a whole data space on one machine, from the shipped code."""

from trustspace.quickstart.cli import quickstart

__all__ = ["quickstart"]
