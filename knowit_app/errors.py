"""Errors the user can act on: each names the config key at fault and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable


class KnowitError(Exception):
    """Base of every error knowit-app raises on purpose."""


class ConfigError(KnowitError, ValueError):
    """Bad user input, detected before any training starts or any file is written.

    The message is one line: ``<key>: <what is wrong>; <what is allowed>``, so that the command
    line and the Python API can show it as is.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.detail = message
        super().__init__(f"{key}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Launchers (submitit) pickle a job's exception back to the sweeper.
        return (type(self), (self.key, self.detail))


class ModelExistsError(KnowitError, FileExistsError):
    """Training would replace a model the user already has."""


def not_found(key: str, missing: str, where: object, existing: Iterable[str],
              kind: str) -> ConfigError:
    """``<key>: no <missing> in <where>; <kind> there: a, b``: a name that is not there.

    Listing what does exist turns a typo into a one-look fix; every "no such ..." uses this.
    """
    names = sorted(existing)
    there = f"{kind} there: {', '.join(names)}" if names else f"no {kind} there"
    return ConfigError(key, f"no {missing} in {where}; {there}")
