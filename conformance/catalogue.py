"""The closed catalogue of conformance checks: every problem the checker can report, as data.

A check has a stable id (never reused, never renamed), a severity, the clause it enforces, a
plain sentence saying what it looks at, and its messages: templates with named slots (``template``,
and named ``forms`` where a check finds problems of different shapes), filled in for each finding
with the values an emitter passes (``Collector.add``); no emitter writes a sentence of its own. A
slot named ``note`` holds a detail that really varies (a library's own error text, the reason a
run did not happen).
``docs/checks.md`` is generated from this module (``python -m emrr.conformance.catalogue``) and a test
keeps it up to date.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Check:
    """One kind of problem: what it is, how bad, which clause it enforces, how it is worded."""

    id: str
    family: str  # file | record | field | cross-file
    severity: str  # error | warning
    clause: str
    title: str
    description: str
    template: str
    default: bool = True  # False: runs only when selected (--select), e.g. an informative warning
    forms: tuple[tuple[str, str], ...] = ()  # (name, template): the other shapes of its message

    def message(self, form: str | None = None, /, **values: object) -> str:
        """The finding's sentence: ``template`` (or the form named ``form``) filled with ``values``
        (a slot without a value is a bug: KeyError)."""
        return (self.template if form is None else dict(self.forms)[form]).format(**values)

    def templates(self) -> list[tuple[str | None, str]]:
        """Every template of the check: (None, the main one), then (name, template) of each form."""
        return [(None, self.template), *self.forms]


CHECKS = (
    # ------------------------------------------------------------------ file
    Check("file-unreadable", "file", ERROR, "EMRR §3.1.1",
          "File unreadable",
          "The file cannot be read at all (permissions, a vanished file, an I/O error, not a regular "
          "file). A symbolic link named like a report, or leading to a folder, is reported and not "
          "followed: the checker reads only the tree it was given. A folder more than 32 levels "
          "below the checked directory is reported and not read.",
          "cannot read the file: {reason}",
          forms=(("link", "a symbolic link; not followed (the checker reads only the files of the tree it was given)"),
                 ("too-deep", "a folder more than {limit} levels deep; not read"))),
    Check("file-name", "file", ERROR, "EMRR App. B; EMRR §3.2.2",
          "File name",
          "The file's name follows the ruleset's pattern (`{report_id}_{recipient}_{sequence}_"
          "{created}.csv` in the revised EMRR, `{report_id}_{party}_{recipient}_{sequence}_{created}.csv` "
          "in the SMETS1 MRR): a known report, a recipient matching the ruleset's `recipients.pattern` "
          "(a 6-character SEC Party ID in the EMRR, a 23-character User ID in the MRR), a 6-character SEC "
          "Party Signifier, a sequence number written with the ruleset's padding (none in the EMRR, six "
          "digits in the MRR), a real creation date-time; a file kept in a recipient's folder is in its "
          "recipient's (or its party's) folder.",
          "the name does not follow the pattern {pattern!r}; expected a name like {example!r}",
          forms=(("extension", "the name ends with {ending!r}; expected {suffix!r}, as in {example!r}"),
                 ("no-extension", "the name has no extension; expected {suffix!r}, as in {example!r}"),
                 ("report", "unknown report {report!r} in the name; expected one of {allowed}"),
                 ("sequence", "sequence number {sequence} in the name is not a whole number"),
                 ("padding", "sequence number {sequence!r} in the name; expected {expected!r} ({padding})"),
                 ("created", "creation date-time {created!r} in the name is not a real date-time {format!r} "
                             "from {first} to {last}"),
                 ("folder", "the file is in folder {folder!r}; expected the recipient's folder {expected!r}"),
                 ("recipient", "recipient {recipient} in the name does not match {pattern!r}; expected a name like "
                               "{example!r}"),
                 ("party", "SEC Party Signifier {party} in the name is not 6 letters or digits; expected a name like "
                           "{example!r}"),
                 ("party-recipient", "SEC Party Signifier {party!r} in the name differs from the recipient "
                                     "{recipient!r}, which is itself a SEC Party ID"))),
    Check("encoding", "file", ERROR, "EMRR §3.2.2; DESIGN.md \"Records\" (UTF-8)",
          "Encoding",
          "The file is text in the ruleset's encoding (UTF-8): no byte sequence that is not UTF-8 "
          "and no NUL byte (a binary file is reported once and not read further).",
          "not {encoding}: byte {byte:#04x} at offset {offset} ({reason}); {lines} line(s) affected; read with "
          "replacement characters",
          forms=(("binary", "a binary file: NUL byte at offset {offset}; expected {encoding} text. Not read "
                            "further"),)),
    Check("bom", "file", ERROR, "DESIGN.md \"Records\" (UTF-8 without BOM)",
          "Byte order mark",
          "The file does not start with a UTF-8 byte order mark.",
          "the file starts with a UTF-8 byte order mark (EF BB BF); expected none"),
    Check("line-ending", "file", ERROR, "EMRR §3.2.2; DESIGN.md \"Records\" (lines end CRLF)",
          "Line endings",
          "Every line, the last included, ends with the ruleset's line terminator (CRLF): no "
          "line ending in LF or CR alone, no last line without a terminator. Reported once per "
          "file with the number of lines affected and the first of them.",
          "{count} line(s) end with {ending}; expected {terminator!r} (first at this line)",
          forms=(("unterminated", "the last line has no line terminator; expected {terminator!r}"),
                 ("records", "{count} record(s) end with {ending}; expected {terminator!r} (first at this line; a "
                             "line break inside a quoted field is data)"))),
    Check("csv-syntax", "file", ERROR, "EMRR §3.2.2; RFC 4180",
          "CSV syntax",
          "The file parses as RFC 4180 CSV with the ruleset's delimiter and quote character "
          "(quoting is accepted wherever RFC 4180 allows it): no stray character after a closing "
          "quote, no quoted field left open at the end of the file.",
          "not valid CSV: {note}",
          forms=(("after-quote", "not valid CSV: {after!r} after a closing quote; expected {delimiter!r} or the end "
                                 "of the record"),
                 ("bare-quote", "not valid CSV: a quote inside a field that is not enclosed in quotes (RFC 4180 "
                                "§2.5)"),
                 ("unclosed", "not valid CSV: a quote that is never closed"))),
    Check("empty-report", "file", ERROR, "EMRR App. A Notes (\"Reports are not produced ... where "
          "... the report will be empty\")",
          "Empty report",
          "A report is not produced when it would be empty: a file has at least one detail "
          "record (when the ruleset does not produce empty reports). A file of 0 bytes is "
          "reported here and not read further.",
          "the report holds no detail record; an empty report is not produced",
          forms=(("zero-bytes", "the file is empty (0 bytes); an empty report is not produced"),)),
    # ------------------------------------------------------------------ record
    Check("record-order", "record", ERROR, "EMRR §3.2.4, §3.2.6; App. A Header and Trailer records",
          "Record order",
          "One header record first, one trailer record last, the detail records between them.",
          "the first record is not the header ({header}); expected the header first",
          forms=(("no-header", "no header record; expected one first"),
                 ("last", "the last record is not the trailer ({trailer}); expected the trailer last"),
                 ("header-inside", "a header record that is not the first record of the file"),
                 ("trailer-inside", "a trailer record that is not the last record of the file"))),
    Check("record-type", "record", ERROR, "EMRR App. A (Record type 00, 10, 99)",
          "Record type",
          "Every line is a record whose first field is a record type of the ruleset (header "
          "`00`, detail `10`, trailer `99`); a blank line is not a record.",
          "{value} is not a record type; expected {allowed}",
          forms=(("blank", "a blank line; expected a record ({allowed})"),
                 ("blank-after", "a blank line after the last record; expected none ({allowed})"))),
    Check("field-count", "record", ERROR, "EMRR App. A record layouts",
          "Field count",
          "A record has exactly as many fields as its layout (header, the report's detail, "
          "trailer). Its fields are not checked further.",
          "{kind} record has {found} fields; expected {expected}"),
    Check("header-file-name", "record", ERROR, "EMRR App. B; App. A Header record",
          "Header matches the file name",
          "The header's Report Identifier, Report Recipient, Report Sequence Number and Report "
          "Creation DateTime are those of the file's name.",
          "{element} is {found!r} in the header but {expected!r} in the file name"),
    Check("trailer-rows-count", "record", ERROR, "EMRR App. A Trailer record (Rows Count)",
          "Trailer rows count",
          "The trailer's Rows Count is the number of detail records in the file.",
          "Rows Count is {found!r}; the file holds {expected} detail records"),
    Check("run-time-schedule", "record", ERROR, "EMRR App. A Frequency; §3.1.2-3.1.5; the "
          "ruleset's schedule.cron",
          "Run time on the schedule",
          "The report's creation date-time is a run time of its schedule (for example ECOSMIG-001 "
          "daily at 06:00 UTC, ECOSMIG-002 at 00:00, 06:00, 12:00 and 18:00).",
          "created {found}, which is not a scheduled run time of {report} ({cron})"),
    Check("window", "record", ERROR, "EMRR App. A Reporting Start/End Period; §3.1.3-3.1.5; "
          "DESIGN.md \"Windows\"",
          "Reporting window",
          "The header's Report Applicable Start and End DateTime are the window of the run that "
          "created the file; a report that the ruleset makes up after an outage (`catch_up`: "
          "ECOSMIG-003, -004, -005) may carry the window of an earlier scheduled run instead.",
          "{found}; expected {expected}: the window of {report} created {created} is {start} - {end}",
          forms=(("catch-up", "{found}; expected {expected}: the window of {report} created {created} is {start} - "
                              "{end}, or an earlier scheduled run's when made up after an outage"),)),
    Check("detail-time-window", "record", ERROR, "EMRR §3.1.3-3.1.6; App. A Reporting End Period",
          "Record date-time inside the window",
          "No record's date or date-time is after the end of its file's window (it could not be "
          "known yet), and a day of ECOSMIG-005 is a day of its window.",
          "{field} {found} is {where} the window {start} - {end}"),
    Check("late-record", "record", WARNING, "EMRR §3.1.6 (\"all previously unreported "
          "transactions\"); DESIGN.md \"Previously unreported\"",
          "Late record",
          "A record of a \"previously unreported\" detail report whose date-time is before its "
          "file's window: allowed (a late notification, or a run lost to an outage, carries the "
          "record to a later file). Off unless selected (`--select late-record`): conforming "
          "files have such records, and a verdict on the reference's own output has no finding.",
          "{field} {found} is {delay} before the window start {start} (late or carried forward)",
          default=False),
    # ------------------------------------------------------------------ field
    Check("field-type", "field", ERROR, "EMRR App. A Field Type and format; §3.2.5",
          "Field type",
          "A non-empty value has its field's type: Integer (digits), DateTime (`YYYYMMDDThhmmss`, "
          "a real UTC date-time), Date (`YYYYMMDD`, a real date).",
          "{value} is not {expected}"),
    Check("field-length", "field", ERROR, "EMRR App. A Max Length",
          "Field length",
          "A value is no longer (in characters) than its field's Max Length.",
          "{length} characters; at most {max_length} allowed"),
    Check("field-mandatory", "field", ERROR, "EMRR App. A M/O",
          "Mandatory field",
          "A mandatory (M) field is not empty.",
          "mandatory field is empty"),
    Check("field-enum", "field", ERROR, "EMRR App. A (e.g. ECOSMIG-003 ECoS Status)",
          "Allowed values",
          "A field with a list of allowed values (ECoS Status: Success, Failure, Installed) holds "
          "one of them; the header's Report Identifier is a report of the ruleset.",
          "{value} is not one of {allowed}"),
    Check("field-range", "field", ERROR, "DESIGN.md \"Number of Attempts\" (the failed attempt itself "
          "included)",
          "Least value",
          "An Integer field with a least value in the ruleset (`minimum`) is not below it: an ECOSMIG-002 "
          "record is a failed attempt, so its Number of Attempts is at least 1.",
          "{value} is below the least value, {minimum}"),
    Check("field-condition", "field", ERROR, "EMRR App. A ECOSMIG-003 (Error Code, Error Sub Code)",
          "Conditional field",
          "A conditional field is present when its condition holds (`mandatory_when`: Error Code "
          "when ECoS Status is Failure) and empty otherwise (`empty_unless`).",
          "empty, but mandatory when {other} is {when!r}",
          forms=(("empty-unless", "{value}, but must be empty unless {other} is {when!r} (it is {other_value})"),)),
    Check("field-constant", "field", ERROR, "EMRR App. A (Record type, DCC Classification); §3.2.6",
          "Constant field",
          "A field whose value the ruleset fixes holds it exactly: the record types, `DCC "
          "Controlled`.",
          "{value}; expected {expected!r}"),
    Check("report-title", "field", WARNING, "EMRR App. A Header record (Report Title: type and length); "
          "DESIGN.md \"Report Title\"",
          "Report Title other than Appendix A's name",
          "The header's Report Title is the report's name in Appendix A (or another spelling the "
          "specification gives it, the ruleset's `title_also`). The EMRR fixes only the title's type "
          "and length (`field-length`, `field-mandatory`), so another title is a warning, not an error.",
          "{value}; Appendix A names {report} {expected!r}"),
    # ------------------------------------------------------------------ cross-file
    Check("sequence-gap", "cross-file", ERROR, "EMRR App. B; DESIGN.md \"Sequence numbers\"",
          "Sequence gap",
          "Per report and recipient, in creation order, the sequence numbers run first, first+1, "
          "... with none skipped (an unproduced empty report takes no number).",
          "sequence number {sequence} of {report} for {recipient} follows {previous}: number(s) {missing} missing",
          forms=(("below-first", "sequence number {sequence} of {report} for {recipient} is below the first number, "
                                 "{first}"),)),
    Check("sequence-start", "cross-file", WARNING, "EMRR App. B; DESIGN.md \"Sequence numbers\"",
          "Sequence starts part-way",
          "The earliest file of a report and recipient in the delivery is numbered above the first number "
          "(1): the files before it are not in the delivery. A delivery may rightly begin part-way through "
          "a report's history (App. B's own example file is number 10), so this is a warning; a number "
          "missing between two files of the delivery is a sequence-gap error.",
          "the earliest file of {report} for {recipient} is number {sequence}: number(s) {missing} are not in the "
          "delivery"),
    Check("sequence-repeat", "cross-file", ERROR, "EMRR App. B; DESIGN.md \"Sequence numbers\"",
          "Sequence repeated",
          "No two files of the same report and recipient carry the same sequence number.",
          "sequence number {sequence} of {report} for {recipient} is also used by {other}"),
    Check("sequence-order", "cross-file", ERROR, "EMRR App. B; DESIGN.md \"Sequence numbers\"",
          "Sequence order",
          "Sequence numbers increase with the files' creation date-time.",
          "sequence number {sequence} was created {created}, after {other} with the higher number "
          "{other_sequence}"),
    Check("duplicate-record", "cross-file", ERROR, "EMRR §3.1.6 (\"previously unreported\": never "
          "twice)",
          "Duplicate record",
          "The same event is not reported twice: across all files, the same success (ECOSMIG-001: "
          "Device ID and completion date-time), the same failed attempt (ECOSMIG-002: Device ID, "
          "date-time and Number of Attempts), the same install (ECOSMIG-006); within one file of "
          "a snapshot or summary, the same device (ECOSMIG-003), model (ECOSMIG-004) or day "
          "(ECOSMIG-005).",
          "same {key} as {other}"),
    Check("attempt-order", "cross-file", ERROR, "DESIGN.md \"Number of Attempts\"; EMRR App. A "
          "ECOSMIG-002",
          "Attempt numbers increase",
          "A device's Number of Attempts increases strictly with the failure date-time across all "
          "ECOSMIG-002 files.",
          "Number of Attempts {found} at {time} does not exceed {previous} at {previous_time} "
          "({other})"),
    Check("failure-after-success", "cross-file", ERROR, "EMRR App. A ECOSMIG-001, ECOSMIG-002",
          "Failure after success",
          "A device that completed migration successfully (ECOSMIG-001) has no failed attempt "
          "(ECOSMIG-002) after that success.",
          "failed attempt at {time} after the device's success at {success_time} ({other})"),
    Check("summary-reconciliation", "cross-file", ERROR, "EMRR App. A ECOSMIG-005; spec/004 §4.4; "
          "DESIGN.md \"ECOSMIG-005\"",
          "Summary reconciles with the detail reports",
          "An ECOSMIG-005 count for a day lies between the number of ECOSMIG-001 (successes) or "
          "ECOSMIG-002 (failures) records of the same recipient for that day in files created "
          "by the ECOSMIG-005 run, and the number in files created by the first detail run at or "
          "after it (which must carry everything the summary knew of); with no detail file created at or "
          "after it, a count above the records at hand when the delivery holds a later file of the recipient "
          "(an empty report is not produced: a missing file is not a missing record). See docs/checks.md.",
          "{field} for {date} is {count}, but {lower} {report} record(s) of {recipient} for that day are in files "
          "created by this report's run ({created})",
          forms=(("no-line", "there is no record for {date} (a count of 0), but {lower} {report} record(s) of "
                             "{recipient} for that day are in files created by this report's run ({created})"),
                 ("above", "{field} for {date} is {count}, but the {report} files of {recipient} created up to "
                           "{next_run} (the first {report} run at or after this report's) hold only {upper} record(s) "
                           "for that day"),
                 ("beyond", "{field} for {date} is {count}, but the {report} files checked hold only {total} record(s) "
                            "of {recipient} for that day, and none was created at or after this report although "
                            "the delivery holds a later file of {recipient} ({later}): an empty report is not "
                            "produced, so no file is missing"))),
    Check("summary-reconciliation-incomplete", "cross-file", WARNING, "EMRR App. A ECOSMIG-005; "
          "spec/004 §4.4",
          "Summary exceeds the detail reports at hand",
          "An ECOSMIG-005 count for a day is higher than the number of ECOSMIG-001/-002 records "
          "for that day in all the files checked, and no detail file created at or after the "
          "summary is among them, nor any later file of the recipient: the detail files that would "
          "carry the rest may not have been collected (the directory ends there). With a later file of "
          "the recipient it is `summary-reconciliation`.",
          "{field} for {date} is {count}, but the {report} files checked hold only {total} record(s) of {recipient} "
          "for that day, and none of them was created at or after this report ({created}): the rest may not have "
          "been collected"),
    Check("report-reconciliation", "cross-file", ERROR, "the ruleset's `reconcile` (SMETS1 MRR v3.0: spec/004 "
          "L115, S1MIG-006 Success records match S1MIG-001)",
          "Declared reconciliation between two reports",
          "A report that declares a reconciliation with another (`reconcile:` in its file: the records meeting its "
          "`where`, matched by the `match` fields, a Date against a DateTime by the day) has, for each recipient "
          "with files of both, a counterpart for each such record in the other report, and the other report's "
          "records each have one among them. A record is checked only where the delivery covers its time in the "
          "other report: that report's files of the recipient begin by the record's day and go on two days past "
          "it.",
          "{report} record{where} of {recipient} ({key}) has no {other} record with the same {fields}; the {other} "
          "files of {recipient} run from {first} to {last}",
          forms=(("unmatched", "{report} record of {recipient} ({key}) has no record{where} of the report that "
                               "declares the reconciliation with it, {other}, with the same {fields}; the {other} "
                               "files of {recipient} run from {first} to {last}"),)),
    Check("recipient-party", "cross-file", ERROR, "MRR App. B (\"the SEC Party associated with the User ID\", "
          "002:L745); EMRR App. B",
          "One SEC Party Signifier per recipient",
          "Every file of a recipient names the same SEC Party Signifier in its name (`{party}`): a User ID belongs "
          "to one SEC Party: the one most of the recipient's files name (of equals, its first file's by name).",
          "SEC Party Signifier {party} for {recipient}, but {other} names {other_party}"),
    # ------------------------------------------------------------------ ground truth (--events)
    Check("gt-missing-file", "ground-truth", ERROR, "EMRR §3.1.2-3.1.5 (report runs); App. A Frequency; "
          "App. B",
          "File the event log gives is missing",
          "Every file that the reference engine writes from the event log (the same report, recipient "
          "and run: creation date-time and window) is in the directory. Its records that are in no "
          "other file are counted in this finding, not one by one.",
          "the event log gives this file ({report} for {recipient}, run created {created}, window {start} - {end}, "
          "sequence number {sequence}, {records} record(s)); no such file is in the directory; {elsewhere} of its "
          "records are in other files (see gt-wrong-run, gt-wrong-recipient)",
          forms=(("none-elsewhere", "the event log gives this file ({report} for {recipient}, run created {created}, "
                                    "window {start} - {end}, sequence number {sequence}, {records} record(s)); no "
                                    "such file is in the directory; none of its records is in another file"),)),
    Check("gt-unexpected-file", "ground-truth", ERROR, "EMRR App. A Notes (no empty report); "
          "§3.1.2-3.1.5",
          "File the event log does not give",
          "Every file of a known report, recipient and creation date-time is one the reference engine "
          "writes from the event log: that report has records for that recipient at that run. Its "
          "records are matched one by one all the same.",
          "the event log gives no {report} file for {recipient} at the run created {created}: {note}",
          forms=(("window", "the event log gives no {report} file for {recipient} at the run created {created} for "
                            "the window starting {start}: {note}"),)),
    Check("gt-missing-record", "ground-truth", ERROR, "EMRR §3.1.6 (\"all previously unreported "
          "transactions\"); App. A detail records",
          "Record the event log gives is missing",
          "Every record the event log gives (a reportable event, a device's state at a snapshot, a "
          "count) is in the directory, in the file of its report, recipient and run. Reported at the "
          "file that should hold it, with the record's identity.",
          "the {report} record of {key} is missing: the event log gives it to {recipient} in the run created "
          "{created}, in this file (line {line} of the reference's file)"),
    Check("gt-unexpected-record", "ground-truth", ERROR, "EMRR §3.1.6 (never twice); App. A detail "
          "records",
          "Record with no event behind it",
          "Every record stands for something in the event log that no other record of the directory "
          "already carries: an event, a device's state at a snapshot, a count. Records are keyed by "
          "report, identity (Device ID; day; model and firmware), event date-time and Number of "
          "Attempts, so a record in the wrong file is `gt-wrong-run` or `gt-wrong-recipient`, not "
          "this.",
          "no event in the event log is behind the {report} record of {key}",
          forms=(("repeat", "the {report} record of {key} repeats an event that the event log gives once, and "
                            "another record of the directory already carries it"),
                 ("elsewhere", "the {report} record of {key}: the event log gives such a record only in other runs "
                               "or for other recipients, and other records of the directory carry them"),
                 ("no-record", "the event log gives no such record: no {report} record of {key} in any run"))),
    Check("gt-wrong-recipient", "ground-truth", ERROR, "EMRR App. A \"Delivered to\"; spec/003 §25; "
          "DESIGN.md \"Recipient\"",
          "Record delivered to another supplier",
          "A record is in a file of the recipient the event log gives: the Responsible Supplier of "
          "the device at the event (at the end of the month for ECOSMIG-003, at the snapshot for "
          "ECOSMIG-004), with the GPF rule. No supplier receives another supplier's device.",
          "the {report} record of {key} is delivered to {recipient}; the event log gives {expected} ({note}): "
          "expected in {where}"),
    Check("gt-wrong-run", "ground-truth", ERROR, "EMRR §3.1.6; DESIGN.md \"Previously unreported\", "
          "\"Windows\"",
          "Record in the wrong run",
          "A record is in the first run that could carry it: for a \"previously unreported\" report, "
          "the first run whose window ends after the event happened and which runs after the "
          "reporting system learned of it; for the others, the run of its window (or the run that "
          "made it up after an outage). The run is the file's creation date-time and window.",
          "the {report} record of {key} is in {here}; the event log puts it in the run created {created} ({note}): "
          "expected in {where}"),
    Check("gt-field-mismatch", "ground-truth", ERROR, "EMRR App. A record layouts; docs/event-log.md",
          "Field differs from the event log",
          "Every field of a record is the value the event log gives (as the reference engine writes "
          "it), and the header's sequence number and window are those of the reference's file.",
          "{found}; the event log gives {expected}",
          forms=(("sequence", "{found}; the event log gives {expected} (the reference's {reference})"),
                 ("window", "{found}; the event log gives {expected} (the window of the run created {created})"),
                 ("party", "SEC Party Signifier {found} in the name; the event log's parties table gives {expected} "
                           "for {recipient} (the reference's {reference})"))),
)

CATALOGUE: dict[str, Check] = {c.id: c for c in CHECKS}
FAMILIES = ("file", "record", "field", "cross-file", "ground-truth")


def get(check_id: str) -> Check:
    return CATALOGUE[check_id]


_DOC_HEAD = """\
# Conformance checks

`emrr check DIR` reads every report file under `DIR` (every file whose name ends `.csv`, in
any sub-folder; hidden files and other files are left alone) and reports every problem it finds
as a *finding*: a check id from the closed catalogue below, a severity, the file (relative to
`DIR`), the line (1-based; none for a problem of the whole file), the field (the EMRR data
element; none when no single field is at fault) and a plain sentence. It checks against a
ruleset (`--ruleset NAME|PATH`, default `emrr-revised`), so a field's type, length and
optionality are those the report engine writes by.

```sh
emrr check DIR [--ruleset NAME|PATH] [--json FILE] [--junit FILE] [--select IDS] [--ignore IDS]
               [--max-examples N] [--events DIR]
```

- Exit status 0 when no error was found (warnings allowed), 1 when at least one error was
  found, 2 when the check could not run (bad arguments, unreadable directory, unknown ruleset),
  with a one-line `emrr: error: ...` message, or when no report file could be read at all (an
  empty directory, only links: the summary says NOTHING CHECKED, never PASS; the JSON's
  `passed` is false and the JUnit XML has one more case, `nothing-checked`, in error).
- The checker reads only the tree it was given: folders are walked without following a
  symbolic link, and a link named like a report or leading to a folder is a `file-unreadable`
  finding (never read: it could lead anywhere, `/etc/passwd` included). FIFOs and devices are
  not opened. Limits: a folder more than 32 levels below the directory is a `file-unreadable`
  finding and not read (the rest is checked); more than 2,000,000 files and folders in all
  stop the check in one line, exit 2 (a verdict on part of a delivery would miss the checks
  across its files). Files are read in pieces of 8 MiB, each cut after a line break (a
  record that runs across two, a quoted field holding line breaks, is carried whole), no further
  than the first NUL byte: memory does not grow with a file's size, only with its longest record
  and with what the checks across files keep of each record (32 bytes for ECOSMIG-001): a valid
  200 MB report file takes about 290 MB at the peak, the process included (870 MB read whole).
- With `--json -` or `--junit -` the document goes to standard output and the summary to
  standard error (not both `-`).
- The terminal shows a summary grouped by check: its count and the first examples.
- `--json FILE` writes every finding kept (all of them with `--max-examples 0`) and the total
  per check; `--junit FILE` writes JUnit XML through the junit-xml library, one test case per
  check of the catalogue: failed when the check found an error, passed with its warnings as
  the case's output when it found only warnings, skipped when it was not selected.
- `--select` / `--ignore` take comma-separated check ids (or families: `file`, `record`,
  `field`, `cross-file`, `ground-truth`).
- `--max-examples N` keeps at most N findings per check (default 1000; 0 keeps all); the
  total per check is always counted.
- `--events DIR` gives the event log (docs/event-log.md) the files were made from, as ground
  truth: the `gt-*` checks (below) then compare every record with what the log gives. Without
  it they do not run (a note says so; in JUnit XML they are skipped). An event log that cannot
  be read stops the check (exit status 2).
- `emrr run SCENARIO --out OUT` ends with this check of `OUT/reports`, with `OUT/events` as
  ground truth, and exits 1 when it finds an error.
- The same checks run inside a supplier's own pytest run: `pytest --emrr-dir DIR
  [--emrr-ruleset NAME|PATH] [--emrr-events LOG]` collects one test per check of the catalogue
  (named by its id: `emrr::field-type`, ...) that fails with that check's errors; a check that
  found only warnings passes, with a line in pytest's summary. The plugin is registered with
  pytest when the package is installed (`conformance/pytest_plugin.py`); without `--emrr-dir`
  it does nothing.

Fields are checked column by column (Polars expressions over every detail record of a report
at once), never cell by cell. A file is read once: its bytes for the encoding, the BOM and the
line endings, then its records; a file without any quote character is split on the delimiter
by Polars (exact for CSV without quoting), any other by Python's `csv` module (RFC 4180
quoting). Nothing in a file, however broken, stops the checker: a binary file, an empty file,
a huge line or ragged rows each become findings. `benchmarks/bench_check_one.py --demo DIR`
measures it (a synthetic ECOSMIG-001 file of 999,999 records, the most Rows Count can hold).

## Readings the checker takes

- **Late records** (`late-record`, a warning, only when selected): a detail report's file holds
  "all previously unreported transactions" (§3.1.6), so a record earlier than its file's window
  is allowed (a late notification, or a run lost to an outage). It is not an error; a record
  *after* the window's end is an error (`detail-time-window`). ECOSMIG-003 (a device's latest
  state) and ECOSMIG-004 (a classification date) are only checked for not being after the
  window's end.
- **Catch-up windows** (`window`): with the ruleset's `outages.summary_reports: catch_up`,
  a report other than a "previously unreported" one may carry the window of an earlier
  scheduled run (made up at the next run that happens); a detail report always carries its
  own run's window.
- **Sequence numbers** are followed per report and recipient in creation order (ties by the
  window's start): a number skipped is `sequence-gap` (reported at the first file after the
  gap; the numbers start at the ruleset's `sequence.first`), a number used twice
  `sequence-repeat`, a number lower than an earlier file's `sequence-order`.
- **ECOSMIG-005 reconciliation.** ECOSMIG-005 counts, by the day they happened, the events the
  reporting system knew of at its run; ECOSMIG-001/-002 carry each event once, in the first
  run after the event's window that runs after the system learned of it. So for a recipient
  and a day, with `S` the summary's count:
  - the ECOSMIG-001 records of that day in files created at or before the summary's run were
    known to it: their number is a lower bound for `S`;
  - the first ECOSMIG-001 run at or after the summary's run (evidenced by a file of any
    recipient created then) carries every event the summary knew of that is not in an earlier
    file: the number of records of that day in files created up to that run is an upper bound.

  A count outside these bounds is `summary-reconciliation` (an error). When no ECOSMIG-001
  file created at or after the summary's run is in the directory, a count higher than all the
  records at hand is `summary-reconciliation` too when the directory holds ECOSMIG-001 files
  and a file of any report for the recipient created after the summary: empty reports are not
  produced, so a missing detail file is not a missing record (DESIGN.md "ECOSMIG-005").
  Without such a later file the upper bound is unknown: it is
  `summary-reconciliation-incomplete` (a warning: the directory ends there, and the detail
  files that carry the rest may not have been collected). The same for
  failures with ECOSMIG-002. A day of the summary's window with records below its lower bound
  and no summary line is a finding too (its count is 0); a recipient with records in a window
  for which it has no summary file at all is not checked (the summary may be made up later).
  An event reported twice counts once (the repeat is a `duplicate-record`); when a detail
  record of the recipient could not be read (a bad date-time, a wrong field count, a binary
  file), only the lower bound is checked.
- **A file's identity** (report, recipient, sequence number, creation date-time) is what its
  name says; the header is compared with it (`header-file-name`) and used only where the name
  cannot be read. Windows are the header's.
- **Duplicates** are events reported twice: the same ECOSMIG-001 success (Device ID and
  completion date-time), the same ECOSMIG-002 failed attempt (Device ID, date-time, Number of
  Attempts) or the same ECOSMIG-006 install, in any files; or, within one file, the same
  device in ECOSMIG-003, model in ECOSMIG-004 or day in ECOSMIG-005. The key is read from the
  ruleset: the fields whose source is `device_id`, the date-times and `attempt_number` for a
  "previously unreported" report, the `group_by` columns (or `device_id`) for the others.
- **Other regimes** (the SMETS1 MRR, `rules/smets1-mrr-*`): everything is read from the ruleset, no
  report is named in the checker. File names carry the recipient's SEC Party Signifier (`{party}`)
  and its User ID (the ruleset's `recipients.pattern`), six-digit sequence numbers and the Party
  folder; a User ID named with two Party Signifiers is `recipient-party` (the one most of its files
  name is taken as its own). Without a trailer in the ruleset there is no Rows Count to check and `99`
  is no record type; each report's own header layout (`Report.header_fields`) is checked, and its
  window fields only where it has them (a Date says the day; a header without them is given its
  run's window, which its records' date-times must not pass). The dates an authorisation asks for
  (Migrate On, Migration Week: a reference table's times) are not bound by the window. Records are
  identified by the report's declared `identity`, else its Device ID or Installation ID; a record a
  ruleset sends to several recipients (each Responsible Supplier and the DNO) is a duplicate only
  when repeated to the same one. A declared `reconcile` (v3.0: S1MIG-006's Success records and
  S1MIG-001, spec/004 L115) is checked both ways per recipient, a record only where the other
  report's files of that recipient begin by its day and go on a week past it (a late notification
  reaches a later file: the SMETS1 scenario's are up to 3 days late). The EMRR's checks across
  files that find their reports by role (a failure after a success; ECOSMIG-005's reconciliation)
  apply where a ruleset has reports in those roles, and not otherwise.
- **Not checked** (the ruleset does not declare them): the shape of a Device ID or an MPxN,
  the check digit of an MPAN, the list of error codes (EMEHRA, not public), whether a field
  was quoted when it need not be (a reader accepts any RFC 4180 quoting). Whether a record
  belongs to its recipient, its run, or the event log at all needs the event log: the
  ground-truth checks.
- **Ground truth** (`--events LOG`). The oracle is the reference engine: it runs the same
  ruleset over `LOG` into a temporary directory, and each detail record of the directory is
  matched, one to one, with a record of that reference. Files are paired first by report,
  recipient and run (creation date-time; for ECOSMIG-003, -004 and -005 also the window, as a
  made-up run after an outage carries an earlier window), the sequence number deciding between
  equals; the partner's header must carry the reference's sequence number and window
  (`gt-field-mismatch` at the header). A record's key is its report and identity: Device ID,
  date-times and Number of Attempts for ECOSMIG-001, -002 and -006 (an event); Device ID for
  ECOSMIG-003, the model and firmware for ECOSMIG-004, the day for ECOSMIG-005 (one per run and
  recipient). Records are matched in place (same key, recipient and run) first; what is left is
  matched on the key and run (in another recipient's file: `gt-wrong-recipient`), on the key and
  recipient (in another run: `gt-wrong-run`), on the key alone (both), and last, for a report
  with a Device ID, on the device within the same file (a date-time or attempt number changed:
  `gt-field-mismatch`). A matched record must equal its reference field by field
  (`gt-field-mismatch`, naming the field). A reference record left over is `gt-missing-record`
  (reported at the file that should hold it, without a line), or part of `gt-missing-file` when
  its whole file is absent; a record of the directory left over is `gt-unexpected-record` (no
  event behind it, or an event that another record already carries). A file of a known report,
  recipient and run that the reference does not write is `gt-unexpected-file`. Completeness is
  expected of the recipients that have a file in the directory only (a supplier checks its own
  folder against the whole log; a note names the others), or with `--expect reports` of the
  (report, recipient) pairs that have a file (a delivery split by report), but every recipient's records take
  part in the matching, so another supplier's record in the directory is still found. The records
  are matched month by month (of the files' creation) from Parquet spilled by the checker, so
  memory stays bounded; the reference costs one run of the report engine.

## The catalogue

"""


def render_markdown() -> str:
    """docs/checks.md, generated from the catalogue."""
    lines = [_DOC_HEAD.rstrip("\n"), ""]
    lines.append("| id | family | severity | what it checks | clause |")
    lines.append("| --- | --- | --- | --- | --- |")
    for c in CHECKS:
        severity = c.severity if c.default else f"{c.severity} (when selected)"
        lines.append(f"| `{c.id}` | {c.family} | {severity} | {c.title} | {c.clause} |")
    for family in FAMILIES:
        lines.append("")
        lines.append(f"## {family.capitalize()} checks")
        for c in (c for c in CHECKS if c.family == family):
            lines.append("")
            lines.append(f"### `{c.id}` ({c.severity}{'' if c.default else ', only when selected'})")
            lines.append("")
            lines.append(c.description)
            lines.append("")
            lines.append(f"- Clause: {c.clause}")
            for form, template in c.templates():
                lines.append(f"- Message{'' if form is None else f' ({form})'}: `{template}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
