"""The release cooldown: only files uploaded before a cutoff (a date, or now minus a duration
such as ``7d``) are used, with per-project exceptions, as pip's ``--uploaded-prior-to`` and
uv's ``--exclude-newer`` do."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from wheelhouse.errors import UsageError

__all__ = [
    "CONFIG_NO_UPLOAD_TIME",
    "CONFIG_PACKAGES",
    "CONFIG_PRIOR_TO",
    "NO_UPLOAD_TIME",
    "Cooldown",
    "Cutoff",
    "NoUploadTime",
    "Verdict",
    "format_time",
    "parse_cutoff",
    "parse_upload_time",
]

NoUploadTime = Literal["keep", "refuse"]
NO_UPLOAD_TIME: tuple[NoUploadTime, ...] = ("refuse", "keep")
Verdict = Literal["ok", "too-new", "unknown"]

# Keys of a pip configuration mapping (``_pip.pip_config()``) that carry a cooldown: pip's
# own option name for the cutoff, and ours (a dot: never a pip option).
CONFIG_PRIOR_TO = "uploaded-prior-to"
CONFIG_PACKAGES = "wheelhouse.exclude-newer-package"
CONFIG_NO_UPLOAD_TIME = "wheelhouse.no-upload-time"

# 7d, 12h, 2w, 30m (uv also spells "7 days"; the short form is what people type).
_SHORT = re.compile(r"^(\d{1,6})\s*(w|d|h|m|s)$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
# ISO 8601 durations without years and months (their length is not fixed): P7D, PT12H, P1W.
_ISO = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d{1,6})W)?(?:(?P<days>\d{1,6})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,6})M)?(?:(?P<seconds>\d{1,6})S)?)?$",
    re.IGNORECASE,
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Cutoff:
    """One cutoff as given: a point in time, or an age (relative to the run's "now")."""

    text: str
    absolute: datetime | None = None
    age: timedelta | None = None

    def at(self, now: datetime) -> datetime:
        if self.absolute is not None:
            return self.absolute
        assert self.age is not None
        return now - self.age


def parse_cutoff(value: str, option: str = "--exclude-newer") -> Cutoff:
    """A date, a date and time (ISO 8601; without a zone, the local one, as pip and uv read
    it) or a duration (``7d``, ``12h``, ``2w``, ``P7D``); a usage error naming ``option``."""
    text = value.strip()
    short = _SHORT.match(text)
    if short is not None:
        age = timedelta(**{_UNITS[short.group(2).lower()]: int(short.group(1))})
        return Cutoff(value, age=age)
    iso = _ISO.match(text)
    if iso is not None:
        parts = {k: int(v) for k, v in iso.groupdict().items() if v is not None}
        return Cutoff(value, age=timedelta(**parts))
    if _DATE.match(text):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.astimezone()  # the local zone, as pip and uv take it
            return Cutoff(value, absolute=moment.astimezone(UTC))
    raise UsageError(
        f"{option} {value!r} is not a date (2026-11-30, 2026-11-30T12:00:00Z) or a duration "
        "(7d, 12h, 2w, P7D)"
    )


def parse_upload_time(text: str) -> datetime:
    """A PEP 700 ``upload-time`` (ISO 8601, ``Z`` or an offset; naive is read as UTC).
    ``ValueError`` for anything else."""
    if not isinstance(text, str) or not _DATE.match(text):
        raise ValueError(f"{text!r} is not an ISO 8601 date and time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as both pip and uv read it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Cooldown:
    """The cutoff for every project, the exceptions, and what to do with a file whose
    upload time the index does not give."""

    default: Cutoff | None = None
    packages: tuple[tuple[NormalizedName, Cutoff], ...] = ()
    no_upload_time: NoUploadTime = "refuse"
    # Durations count back from one moment, taken once per run, so every stage agrees.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_options(
        cls,
        exclude_newer: str | None,
        packages: Iterable[str] = (),
        no_upload_time: str = "refuse",
    ) -> Cooldown | None:
        """The cooldown the command line asks for, or None for none."""
        if no_upload_time not in NO_UPLOAD_TIME:
            raise UsageError(f"--no-upload-time {no_upload_time!r} is not 'refuse' or 'keep'")
        default = parse_cutoff(exclude_newer) if exclude_newer is not None else None
        exceptions: dict[NormalizedName, Cutoff] = {}
        for item in packages:
            name, eq, value = item.partition("=")
            try:
                project = canonicalize_name(name.strip(), validate=True)
            except InvalidName:
                project = None
            if not eq or project is None:
                raise UsageError(
                    f"--exclude-newer-package {item!r} is not NAME=VALUE (a project name, and a "
                    "date or duration)"
                )
            exceptions[project] = parse_cutoff(value, f"--exclude-newer-package {name.strip()}")
        if default is None and not exceptions:
            return None
        ordered = tuple(sorted(exceptions.items(), key=lambda item: item[0]))
        return cls(default, ordered, "keep" if no_upload_time == "keep" else "refuse")

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> Cooldown | None:
        """The cooldown a pip configuration mapping carries (see ``as_config``), if any."""
        prior = config.get(CONFIG_PRIOR_TO)
        packages = config.get(CONFIG_PACKAGES, "").split()
        if not prior and not packages:
            return None
        return cls.from_options(
            prior or None, packages, config.get(CONFIG_NO_UPLOAD_TIME, "refuse")
        )

    def as_config(self) -> dict[str, str]:
        """This cooldown as pip configuration keys, with absolute times (pip's key first)."""
        config: dict[str, str] = {CONFIG_NO_UPLOAD_TIME: self.no_upload_time}
        if self.default is not None:
            config[CONFIG_PRIOR_TO] = format_time(self.default.at(self.now))
        if self.packages:
            config[CONFIG_PACKAGES] = " ".join(
                f"{name}={format_time(cutoff.at(self.now))}" for name, cutoff in self.packages
            )
        return config

    def cutoff(self, name: str) -> datetime | None:
        """The time before which ``name``'s files must have been uploaded, or None."""
        project = canonicalize_name(name)
        for known, cutoff in self.packages:
            if known == project:
                return cutoff.at(self.now)
        return self.default.at(self.now) if self.default is not None else None

    def verdict(self, name: str, upload_time: str | None) -> Verdict:
        """Whether a file of ``name`` uploaded at ``upload_time`` may be used.

        ``ValueError`` for an upload time that is not a time (the page is then unusable).
        """
        cutoff = self.cutoff(name)
        if cutoff is None:
            return "ok"
        if upload_time is None:
            return "unknown"
        return "ok" if parse_upload_time(upload_time) < cutoff else "too-new"

    def describe(self, name: str) -> str:
        """The cutoff that applies to ``name``, for messages."""
        cutoff = self.cutoff(name)
        return format_time(cutoff) if cutoff is not None else "none"
