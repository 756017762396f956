"""The one YAML loader: scenarios and rulesets are read, hardened and validated here.

``load_file`` reads a file and ``loads`` a text with PyYAML's safe loader (no Python tags), with
its crashes turned into YAML errors (``!!int abc``, ``!!bool maybe``, a 5,000-digit integer), a
guard against alias bombs ("billion laughs"), a key repeated in one mapping refused, YAML dates
turned into ISO strings so that a schema sees one form (``check_finite`` refuses NaN and infinity,
after the schema). Each returns
the data and a line index (YAML path -> line), so that every later error names the file, the
line and the YAML path: ``FILE:LINE: at a.b[2].c: expected ...`` (``error_at``). ``schema_error``
gives the JSON Schema error a user should see first.

Every layer (``emrr.sim``, ``emrr.rules``, ``emrr.conformance``) may import this module.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from emrr.errors import UserError

MAX_VALUES = 1_000_000  # values in a document once its aliases are expanded
MAX_BYTES = 4 << 20  # a scenario or ruleset file: the national scenario is 5 KB, a report's rules 3 KB

Lines = dict[tuple, int]


# libyaml's parser where PyYAML has it (about 10x faster), with the safe constructors either way
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeLoader(_Base):
    """``yaml.safe_load``'s loader (no Python tags), with its crashes turned into YAML errors.

    PyYAML's safe constructors raise ValueError/KeyError/IndexError... for values such as
    ``!!int abc``, ``!!int ''``, ``!!bool maybe`` or a 5,000-digit integer; those become a ConstructorError
    with the line. A plain timestamp that is no real date (2023-02-30) stays a string, so the
    schema reports it with its YAML path.
    """

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # ValueError, LookupError, AttributeError...: PyYAML's own crashes
            value = str(node.value) if isinstance(node, yaml.ScalarNode) else node.id
            value = value if len(value) <= 40 else value[:37] + "..."
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.tag.rsplit(':', 1)[-1]} value {value!r}: {exc}",
                node.start_mark) from None

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _SafeLoader.construct_yaml_timestamp)


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names the expected file in errors ("a scenario YAML file").

    Only a regular file of at most MAX_BYTES is read, and never more than that: a FIFO (which would
    block), a device (``/dev/zero`` never ends) or a 50 MB file is refused at once.
    """
    where = str(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"not a regular file (a device, FIFO or socket); expected {what}", file=where)
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UserError(f"larger than {MAX_BYTES >> 20} MB; expected {what}", file=where)
        return data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"file not found; expected {what}", file=where)
    except IsADirectoryError:
        raise UserError(f"is a directory; expected {what}", file=where)
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=where)
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", file=where)


def load_file(path: str | Path, what: str) -> tuple[Any, Lines]:
    """Read and parse a YAML file: (data, line index). See the module docstring."""
    return loads(read_text(path, what), str(path))


def loads(text: str, where: str) -> tuple[Any, Lines]:
    """Parse YAML ``text`` (``where`` names it in errors): (data, line index)."""
    try:
        return _loads(text, where)
    except RecursionError:
        raise UserError("invalid YAML: exceeded maximum nesting depth", file=where) from None


def _loads(text: str, where: str) -> tuple[Any, Lines]:
    loader = _SafeLoader(text)
    try:  # parsed once: the node tree gives both the line index and the data
        node = loader.get_single_node()
        lines = _index(node, where)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"invalid YAML: {problem}", file=f"{where}{at}") from None
    finally:
        loader.dispose()
    data = _normalise(data, {})
    if _expanded_size(data, {}) > MAX_VALUES:  # a "billion laughs" of aliases anywhere in the file
        raise UserError(f"expected at most {MAX_VALUES:,} values once YAML aliases are expanded", file=where)
    return data, lines


def _expanded_size(value: Any, memo: dict[int, int]) -> int:
    """How many values the document holds with every alias expanded (counted without expanding)."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) in memo:
        return memo[id(value)]
    memo[id(value)] = MAX_VALUES + 1  # a cycle counts as too large
    items = value.values() if isinstance(value, dict) else value
    total = 1
    for item in items:
        total += _expanded_size(item, memo)
        if total > MAX_VALUES:
            break
    memo[id(value)] = total
    return total


def _normalise(value: Any, done: dict[int, Any]) -> Any:
    """YAML dates and date-times become ISO strings, so the schema sees one form.

    ``done`` keeps YAML aliases shared: a "billion laughs" document is not expanded.
    """
    if isinstance(value, (dict, list)) and id(value) in done:
        return done[id(value)]
    if isinstance(value, dict):
        done[id(value)] = out = {}
        out.update({str(k) if not isinstance(k, str) else k: _normalise(v, done) for k, v in value.items()})
        return out
    if isinstance(value, list):
        done[id(value)] = out = []
        out.extend(_normalise(v, done) for v in value)
        return out
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0):
            value = value.replace(tzinfo=None)
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def check_finite(value: Any, where: str, lines: Lines, path: tuple = ()) -> None:
    """.nan and .inf pass every JSON Schema bound (NaN compares false): reject them (after the
    schema, so that a value of the wrong type is reported as such first)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise error_at(where, lines, path, f"expected a finite number, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, where, lines, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_finite(item, where, lines, path + (i,))


def line_index(text: str, where: str = "<yaml>") -> Lines:
    """Map each YAML path (tuple of keys and indices) to its 1-based line number.

    Also rejects a key repeated in one mapping (PyYAML would silently keep the last).
    """
    return _index(yaml.compose(text, Loader=_Base), where)


def _index(root: yaml.Node | None, where: str) -> Lines:
    index: Lines = {}
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: tuple) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen_nodes:  # an alias: its lines are those of the anchor
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in keys:
                        raise UserError(f"expected each key once in a mapping; {key.value!r} is repeated",
                                        file=f"{where}:{key.start_mark.line + 1}",
                                        path=format_path(path + (key.value,)))
                    keys.add((key.tag, key.value))
                index[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
                index[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    if root is not None:
        walk(root, ())
    return index


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_/-]+$")


def format_path(path: tuple | list) -> str:
    """('migration', 'errors', 2, 'code') -> 'migration.errors[2].code'; an unusual key (a dot,
    a space, a line break) is quoted: outages.windows[0]['\\n']."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{str(part)!r}]"
    return out


def error_at(where: str, lines: Lines, path: tuple | list, message: str) -> UserError:
    """A UserError naming ``where``, the line of the nearest known YAML path, and ``path``."""
    probe = tuple(path)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    return UserError(message, file=f"{where}:{line}" if line else where, path=format_path(path))


def schema_error(validator: jsonschema.protocols.Validator, data: Any) -> jsonschema.ValidationError | None:
    """The error of ``data`` a user should see first (jsonschema's best match), or None."""
    return jsonschema.exceptions.best_match(validator.iter_errors(data))
