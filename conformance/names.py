"""File names: the ruleset's pattern (``{report_id}_{recipient}_{sequence}_{created:%Y...}.csv``)
read back into its parts, each checked (EMRR App. B)."""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass
from pathlib import PurePosixPath

from emrr.conformance.fields import clip
from emrr.conformance.findings import Collector
from emrr.conformance.formats import UTC, YEARS, parse_one, whole_number
from emrr.rules.ruleset import Ruleset


@dataclass
class Name:
    """What a file's name says; a part that could not be read is None."""

    report_id: str | None = None
    recipient: str | None = None
    sequence_text: str | None = None
    sequence: int | None = None
    created_text: str | None = None
    created: int | None = None


class NamePattern:
    def __init__(self, rs: Ruleset):
        self.rs = rs
        self.created_format = "%Y%m%d%H%M%S"
        parts = []
        for literal, field, spec, _ in string.Formatter().parse(rs.file_pattern):
            parts.append(re.escape(literal))
            if field is None:
                continue
            if field == "created" and spec:
                self.created_format = spec
            group = field if field in ("report_id", "recipient", "sequence", "created") else None
            parts.append(f"(?P<{group}>.+?)" if group else ".+?")
        self.regex = re.compile("".join(parts), re.DOTALL)
        self.suffix = PurePosixPath(rs.file_pattern).suffix
        self.folder = rs.folder
        self.example = rs.file_name("ECOSMIG-001", "PXX999", 10, dt.datetime(2021, 12, 6, 6, tzinfo=UTC))
        self.report_prefix = re.compile("|".join(re.escape(r) for r in sorted(rs.reports)) + r"[_\-.]", re.IGNORECASE)

    def is_candidate(self, file_name: str) -> bool:
        """A file the checker reads: not hidden, and its name ending like the pattern (any case)
        or starting with a report id of the ruleset (a report with another extension, or none,
        is read and its name reported, never passed over)."""
        if file_name.startswith("."):
            return False
        return file_name.lower().endswith(self.suffix.lower()) or self.report_prefix.match(file_name) is not None

    def read(self, rel: str, out: Collector) -> Name:
        """The parts of ``rel``'s name, with a ``file-name`` finding for each that is wrong."""
        folder, _, base = rel.rpartition("/")
        m = self.regex.fullmatch(base)
        if m is None and self.suffix and not base.endswith(self.suffix):
            stem = base.rsplit(".", 1)[0] if "." in base.rsplit("_", 1)[-1] else base
            m = self.regex.fullmatch(stem + self.suffix)
            ending = base[len(stem):]
            out.add("file-name", rel, None, None, "extension" if ending else "no-extension", ending=ending,
                    suffix=self.suffix, example=self.example)
            if m is None:
                return Name()
        elif m is None:
            out.add("file-name", rel, None, None, pattern=self.rs.file_pattern, example=self.example)
            return Name()
        parts = m.groupdict()
        name = Name()
        rid = parts.get("report_id")
        if rid is not None:
            if rid in self.rs.reports:
                name.report_id = rid
            else:
                out.add("file-name", rel, None, None, "report", report=rid, allowed=", ".join(self.rs.reports))
        name.recipient = parts.get("recipient")
        seq = parts.get("sequence")
        if seq is not None:
            name.sequence_text = seq
            pad = self.rs.sequence_padding
            number = whole_number(seq)
            if number is None:
                out.add("file-name", rel, None, None, "sequence", sequence=clip(seq))
            else:
                name.sequence = number
                expected = str(name.sequence).zfill(pad) if pad else str(name.sequence)
                if seq != expected:
                    how = f"zero-padded to {pad} digits" if pad else "without padding"
                    out.add("file-name", rel, None, None, "padding", sequence=seq, expected=expected, padding=how)
        created = parts.get("created")
        if created is not None:
            name.created_text = created
            name.created = parse_one(created, "datetime", self.created_format, self.created_format)
            if name.created is None:
                out.add("file-name", rel, None, None, "created", created=created, format=self.created_format,
                        first=YEARS[0], last=YEARS[1])
        if self.folder and name.recipient is not None and folder:
            expected = self.folder.format(recipient=name.recipient, report_id=rid or "").strip("/")
            if folder != expected and not folder.endswith("/" + expected):
                out.add("file-name", rel, None, None, "folder", folder=folder, expected=expected)
        return name
