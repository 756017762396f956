"""File names: the ruleset's pattern (``{report_id}_{recipient}_{sequence}_{created:%Y...}.csv`` in
the EMRR, ``{report_id}_{party}_{recipient}_{sequence}_{created:...}.csv`` in the SMETS1 MRR) read
back into its parts, each checked (EMRR App. B; MRR App. B, 002:L737-751): the report, the
recipient against the ruleset's ``recipients.pattern``, the SEC Party Signifier, the sequence
number's padding, the creation date-time, and the folder (``{recipient}`` or ``{party}``)."""

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
    party: str | None = None  # the SEC Party Signifier the name gives ({party}), or None
    sequence_text: str | None = None
    sequence: int | None = None
    created_text: str | None = None
    created: int | None = None


# A SEC Party Signifier: "6 character" (MRR 002:L741; EMRR App. B), letters and digits as the
# engine writes them (a recipient identifier when recipients.party is self)
PARTY = re.compile(r"^[A-Z0-9]{6}$")
# Example recipients for a message, with their Party Signifiers: App. B's own (EMRR PXX999; MRR
# 002:L756-757, User ID 70-B3-D5-1F-30-00-A0-01)
EXAMPLES = {"self": ("PXX999", "PXX999"), "parties": ("70-B3-D5-1F-30-00-A0-01", "PXX999")}
GROUPS = ("report_id", "recipient", "party", "sequence", "created")


class NamePattern:
    def __init__(self, rs: Ruleset):
        self.rs = rs
        self.created_format = "%Y%m%d%H%M%S"
        parts = []
        self.fields: list[str] = []
        for literal, field, spec, _ in string.Formatter().parse(rs.file_pattern):
            parts.append(re.escape(literal))
            if field is None:
                continue
            if field == "created" and spec:
                self.created_format = spec
            group = field if field in GROUPS else None
            self.fields.append(field)
            parts.append(f"(?P<{group}>.+?)" if group else ".+?")
        self.regex = re.compile("".join(parts), re.DOTALL)
        self.suffix = PurePosixPath(rs.file_pattern).suffix
        self.folder = rs.folder
        self.recipients = re.compile(rs.recipient_pattern)
        self.party_kind = rs.recipient_party
        recipient, party = EXAMPLES[self.party_kind]
        pad = rs.sequence_padding
        self.example = rs.file_pattern.format(report_id=next(iter(rs.reports)), recipient=recipient, party=party,
                                              sequence=str(10).zfill(pad) if pad else "10",
                                              created=dt.datetime(2021, 12, 6, 6, tzinfo=UTC))
        self.report_prefix = re.compile("|".join(re.escape(r) for r in sorted(rs.reports)) + r"[_\-.]", re.IGNORECASE)

    def expected_folder(self, recipient: str, party: str | None, report_id: str) -> str:
        """The folder a file of ``recipient`` (with the SEC Party Signifier ``party``, when the name
        gives it) belongs in: the ruleset's ``file_name.folder``."""
        if party is None:
            party = recipient if self.party_kind == "self" else "{party}"
        return self.folder.format(recipient=recipient, report_id=report_id, party=party).strip("/")

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
        if name.recipient is not None and not self.recipients.fullmatch(name.recipient):
            out.add("file-name", rel, None, None, "recipient", recipient=clip(name.recipient),
                    pattern=self.recipients.pattern, example=self.example)
        party = parts.get("party")
        if party is not None:
            if not PARTY.fullmatch(party):
                out.add("file-name", rel, None, None, "party", party=clip(party), example=self.example)
            elif self.party_kind == "self" and name.recipient is not None and party != name.recipient:
                out.add("file-name", rel, None, None, "party-recipient", party=party, recipient=name.recipient)
            else:
                name.party = party
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
        if self.folder and name.recipient is not None and folder and ("{party}" not in self.folder or party):
            expected = self.expected_folder(name.recipient, party, rid or "")
            if folder != expected and not folder.endswith("/" + expected):
                out.add("file-name", rel, None, None, "folder", folder=folder, expected=expected)
        return name
