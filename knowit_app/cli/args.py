"""What the companion commands share: ``key=value`` arguments and their exit codes.

``knowit-app-consolidate``, ``-report``, ``-eval`` and ``-predict`` take the same words as the
Hydra app (``model_name=m sweep=s``), answer ``--help`` with their usage, and end with 0, or 2
and one line on a user error, or 1 on an I/O error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from knowit_app.errors import ConfigError, KnowitError

ALIASES = {"sweep_name": "sweep", "sweep.name": "sweep", "model": "model_name",
           "run_name": "run", "split": "set"}
HELP_WORDS = ("-h", "--help", "help")


def parse_kv(argv: Sequence[str], keys: Sequence[str], required: Sequence[str] = (),
             aliases: Mapping[str, str] = ALIASES) -> dict[str, str]:
    """``key=value`` words into a dict; unknown keys, repeats and missing keys are errors."""
    args: dict[str, str] = {}
    for word in argv:
        key, sep, value = word.partition("=")
        key = aliases.get(key.strip(), key.strip())
        if not sep or key not in keys:
            raise ConfigError(key or word, f"unknown argument {word!r}; use "
                              + ", ".join(f"{k}=..." for k in keys))
        if key in args:
            raise ConfigError(key, "given twice")
        args[key] = value.strip()
    for key in required:
        if not args.get(key):
            raise ConfigError(key, f"missing; give {key}=<name>")
    return args


def shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_command(argv: Sequence[str] | None, usage: str,
                body: Callable[[list[str]], str]) -> int:
    """Print ``body(argv)``'s text: 0; a user error: one line on stderr, 2; an I/O error: 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in HELP_WORDS for a in argv):
        print(usage)
        return 0
    try:
        text = body(argv)
    except KnowitError as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
