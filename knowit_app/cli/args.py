"""The one way every companion command reads its arguments: argparse, with ``key=value`` words.

``knowit-app-consolidate model_name=m sweep=s`` takes the same words as the Hydra app, and
``knowit-app-import readings.csv --name plant`` the usual options; each command accepts both
forms for each of its keys (``sweep=s`` is ``--sweep s``). Every command answers ``--help``
with its usage and ends with 0, or 2 and one line ``error: ...`` on a user error, or 1 and one
line on an I/O error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from knowit_app.errors import ConfigError, KnowitError

# Other spellings users carry over from KnowIt and from the Hydra app's keys.
ALIASES = {"sweep_name": "sweep", "sweep.name": "sweep", "model": "model_name",
           "run_name": "run", "split": "set"}
HELP_WORDS = ("-h", "--help", "help")


class UsageError(KnowitError):
    """A command line argparse cannot read (a missing value, an unknown subcommand)."""


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that also reads ``key=value`` and never exits by itself."""

    def __init__(self, prog: str, *, usage: str | None = None, description: str | None = None,
                 aliases: Mapping[str, str] = ALIASES, **kwargs: object) -> None:
        super().__init__(prog=prog, usage=usage, description=description, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         **kwargs)  # type: ignore[arg-type]
        self.aliases = dict(aliases)
        self.keys: dict[str, argparse.Action] = {}
        self.required_keys: list[str] = []

    def add_key(self, key: str, help: str, *, required: bool = False,  # noqa: A002
                default: str | None = None, flag: bool = False) -> None:
        """A key given as ``key=value`` or ``--key value`` (``--key-name`` too)."""
        options = dict.fromkeys([f"--{key.replace('_', '-')}", f"--{key}"])
        if flag:
            action = self.add_argument(*options, dest=key, action="store_true", help=help)
        else:
            action = self.add_argument(*options, dest=key, default=default, help=help,
                                       metavar=key.upper())
        self.keys[key] = action
        if required:
            self.required_keys.append(key)

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """Parse ``argv``; a ConfigError naming the key for unknown, repeated or missing keys."""
        args = self.parse_args(list(argv))
        for key in self.required_keys:
            if not getattr(args, key, None):
                raise ConfigError(key, f"missing; give {key}=<{key.removesuffix('_name')}>")
        return args

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's parse, after ``key=value`` words became options (subcommands too)."""
        words = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._as_options(words), namespace)

    def _as_options(self, argv: Sequence[str]) -> list[str]:
        """``key=value`` words -> ``--key=value``; each key at most once, in either form."""
        takes_words = any(not a.option_strings for a in self._actions)  # positionals or commands
        seen: set[str] = set()
        out: list[str] = []
        for word in argv:
            key, sep, value = word.partition("=")
            if word.startswith("-"):
                action = self._option_string_actions.get(key)
                key = action.dest if action is not None and action.dest in self.keys else ""
            elif sep:
                key = self.aliases.get(key.strip(), key.strip())
                if key in self.keys:
                    word = f"--{key}={value.strip()}"
                elif not takes_words:
                    raise ConfigError(key or word, f"unknown argument {word!r}; use "
                                      + ", ".join(f"{k}=..." for k in self.keys))
                else:
                    key = ""
            else:
                key = ""
            if key and key in seen:
                raise ConfigError(key, "given twice")
            seen.add(key)
            out.append(word)
        return out

    def error(self, message: str) -> None:  # type: ignore[override]
        """argparse's own usage errors, as one line (argparse would print usage and exit)."""
        raise UsageError(f"{message} (see {self.prog} --help)")


def shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_command(parser: CommandParser, argv: Sequence[str] | None,
                body: Callable[[argparse.Namespace], str]) -> int:
    """Print ``body(args)``'s text: 0; a user error: one line on stderr, 2; an I/O error: 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["help"]:
        argv = ["--help"]
    try:
        text = body(parser.parse(argv))
    except SystemExit as exc:  # --help, printed by argparse
        return exc.code if isinstance(exc.code, int) else 0
    except KnowitError as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text, end="" if text.endswith("\n") else "\n")
    return 0
