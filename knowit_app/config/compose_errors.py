"""Hydra's refusals of a command line (unknown key, wrong type, unknown option) as one line.

Hydra composes the config before any of the app's code runs, and prints its own multi-line
message (exit status 1) when a key is misspelt (``arch.dropuot=0.1``), a value has the wrong
type (``data.batch_size=many``), a config-group option does not exist (``arch=mpl``) or an
override does not parse. The app's rule for bad input is one line naming the key and what is
allowed, exit status 2; this module turns those exceptions into that line. Hydra offers no hook
for it, so ``knowit_app.app.main`` asks Hydra to raise them (``HYDRA_FULL_ERROR``) and hands
every other exception back to Hydra's own printing.
"""

from __future__ import annotations

import re

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

_KEY_PATTERNS = (re.compile(r"Could not override '([^']+)'"),
                 re.compile(r"An item is already at '([^']+)'"),
                 re.compile(r"Could not delete from config\. '([^']+)'"),
                 re.compile(r"Error merging override ([^=\s]+)="))
_MISSING = re.compile(r"Could not find '([^']+)'")
# Schema entries Hydra lists among a group's options: not options a user picks.
_SCHEMA_PREFIX = "base_"


def is_composition_error(exc: BaseException) -> bool:
    return isinstance(exc, (ConfigCompositionException, OverrideParseException))


def one_line(exc: BaseException) -> str:
    """``<key>: <what is wrong>; <what is allowed>`` for one of Hydra's refusals."""
    text = str(exc).strip()
    cause = str(exc.__cause__).strip().splitlines()[0] if exc.__cause__ else ""
    if isinstance(exc, OverrideParseException):
        hint = ""
        if not str(exc.override).isascii():  # Hydra's grammar reads unquoted ASCII only
            hint = "; quote a value holding other characters: 'key=\"value\"'"
        return f"{exc.override}: cannot parse this override ({text.splitlines()[0]}){hint}"
    if isinstance(exc, MissingConfigException):
        missing = _MISSING.search(text)
        path = missing.group(1) if missing else (exc.missing_cfg_file or "")
        group, _, option = path.rpartition("/")
        options = sorted(o for o in (exc.options or []) if not o.startswith(_SCHEMA_PREFIX))
        if group and options:
            return f"{group}: no option {option!r}; available: {', '.join(options)}"
        return text.splitlines()[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in _KEY_PATTERNS:
        match = pattern.search(text)
        if match:
            why = cause or " ".join(lines)
            return (f"{match.group(1)}: {why}; see the keys and their types with "
                    "knowit-app --help or knowit-app --cfg job")
    return " ".join(lines)
