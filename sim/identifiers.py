"""Identifiers made column-wise: EUI-64 Device IDs, MPAN cores and MPRNs with valid check digits.

Each works on whole NumPy arrays and returns Arrow string arrays built straight from fixed-width
byte buffers, so that 30 million identifiers cost seconds, not minutes. The tests check the
results against the ``mpan`` package and the published examples (FACTS.md "Identifiers").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MPAN_WEIGHTS = np.array([3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43], dtype=np.int64)
_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
MPRN_SPACE = 9 * 10**7  # make_mprns: 8 digits unique per premises, the first 1-9
# Premises numbering: the initial premises 0..premises-1, then each shard's new premises from
# premises + shard * NEW_PREMISES_STRIDE, so that shards number their installs independently.
# The scenario checks that every number stays below MPRN_SPACE (10-digit MPRNs stay unique).
NEW_PREMISES_STRIDE = 1_000_000
DISTRIBUTORS = tuple(range(10, 24))  # the DNO distributor ids an MPAN starts with (FACTS.md "Identifiers")
# With a manufacturer prefix, a Device ID is the prefix's 24 bits then 40 bits unique per device:
# device indices stay below 4 x MPRN_SPACE < 2^40, so a bijection of 40 bits keeps them unique.
_BITS40 = np.uint64((1 << 40) - 1)


def fixed_width_strings(chars: np.ndarray) -> pa.StringArray:
    """An (n, w) uint8 array of ASCII characters -> an Arrow string array of n strings of width w."""
    n, width = chars.shape
    data = pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, data)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a bijection of uint64, so distinct inputs give distinct outputs."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def device_id_numbers(device_index: np.ndarray, seed: int) -> np.ndarray:
    """Unique 64-bit Device IDs: a bijection of the global device index (unique by construction)."""
    with np.errstate(over="ignore"):
        salt = splitmix64(np.array([seed], dtype=np.uint64))[0]
        return splitmix64(device_index.astype(np.uint64) ^ salt)


def device_id_numbers_with_prefix(device_index: np.ndarray, seed: int, prefix: np.ndarray) -> np.ndarray:
    """Device IDs that start with their manufacturer's 24-bit ``prefix`` (one per device): the other 40
    bits are a bijection of the device index within 40 bits (odd multiplications and xor-shifts modulo
    2^40), so two devices never share an ID."""
    with np.errstate(over="ignore"):
        salt = splitmix64(np.array([seed], dtype=np.uint64))[0] & _BITS40
        z = (device_index.astype(np.uint64) ^ salt) & _BITS40
        for multiplier in (np.uint64(0x9E3779B97F4B), np.uint64(0xC2B2AE3D27D5)):
            z = (z ^ (z >> np.uint64(19))) & _BITS40
            z = (z * multiplier) & _BITS40
        z = (z ^ (z >> np.uint64(23))) & _BITS40
        return (prefix.astype(np.uint64) << np.uint64(40)) | z


def format_eui64(numbers: np.ndarray) -> pa.StringArray:
    """uint64 -> 'XX-XX-XX-XX-XX-XX-XX-XX' (8 upper-case hex octets, 23 characters)."""
    n = len(numbers)
    octets = numbers.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, 24), dtype=np.uint8)
    chars[:, 0::3] = _HEX[octets >> 4]
    chars[:, 1::3] = _HEX[octets & 0x0F]
    chars[:, 2::3] = ord("-")
    return fixed_width_strings(chars[:, :23])


def _write_digits(values: np.ndarray, chars: np.ndarray, first: int, width: int) -> np.ndarray:
    """Write the ``width`` decimal digits of ``values`` into ``chars[:, first:first+width]``.

    Returns the digits' weighted-sum helpers' raw material: the (width, n) digit rows as int64.
    """
    rest = values.astype(np.int64)
    rows = np.empty((width, len(values)), dtype=np.int64)
    for pos in range(width - 1, -1, -1):
        rest, rows[pos] = np.divmod(rest, 10)
        chars[:, first + pos] = rows[pos] + ord("0")
    return rows


def mpan_check_digit(first12: np.ndarray) -> np.ndarray:
    """Check digit of MPAN cores from their first 12 digits, (n, 12): sum of weighted digits mod 11 mod 10."""
    return (first12 @ MPAN_WEIGHTS) % 11 % 10


def mprn_check_digits(base: np.ndarray) -> np.ndarray:
    """Two check digits of MPRNs from their other n digits, (rows, n): weights n..1, sum mod 11."""
    n = base.shape[1]
    weights = np.arange(n, 0, -1, dtype=np.int64)
    return (base @ weights) % 11


def _weighted(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = np.zeros(rows.shape[1], dtype=np.int64)
    for row, weight in zip(rows, weights):
        total += row * int(weight)
    return total


def make_mpans(premise_index: np.ndarray, seed: int, rng: np.random.Generator,
               distributor_weights: np.ndarray | None = None) -> pa.StringArray:
    """Unique 13-digit MPAN cores: a distributor id 10-23 (uniform, or drawn with ``distributor_weights``, one
    per id of DISTRIBUTORS), 10 digits unique per premises, a check digit."""
    n = len(premise_index)
    if distributor_weights is None:
        distributor = rng.integers(10, 24, size=n, dtype=np.int64)
    else:
        distributor = np.asarray(DISTRIBUTORS, dtype=np.int64)[rng.choice(len(DISTRIBUTORS), size=n,
                                                                          p=distributor_weights)]
    # Multiplying by a unit of Z/10^10 (odd, not a multiple of 5) is a bijection: unique digits.
    unique10 = (premise_index.astype(np.int64) * 7_919_179 + (seed % 10**10)) % 10**10
    chars = np.empty((n, 13), dtype=np.uint8)
    rows = np.concatenate([_write_digits(distributor, chars, 0, 2), _write_digits(unique10, chars, 2, 10)])
    chars[:, 12] = _weighted(rows, MPAN_WEIGHTS) % 11 % 10 + ord("0")
    return fixed_width_strings(chars)


def make_mprns(premise_index: np.ndarray, seed: int) -> pa.StringArray:
    """Unique 10-digit MPRNs: 8 digits unique per premises (first digit 1-9) and 2 check digits."""
    space = MPRN_SPACE
    unique = (premise_index.astype(np.int64) * 7_368_787 + (seed % space)) % space + 10**7
    chars = np.empty((len(unique), 10), dtype=np.uint8)
    rows = _write_digits(unique, chars, 0, 8)
    _write_digits(_weighted(rows, np.arange(8, 0, -1)) % 11, chars, 8, 2)
    return fixed_width_strings(chars)


def mpan_is_valid(core: str) -> bool:
    """The MPAN core check (FACTS.md): for tests and the conformance suite."""
    if len(core) != 13 or not core.isdigit():
        return False
    digits = np.array([int(c) for c in core], dtype=np.int64)
    return int(mpan_check_digit(digits[None, :12])[0]) == digits[12]


def mprn_is_valid(mprn: str) -> bool:
    """The MPRN check (FACTS.md): the last two digits are the weighted sum of the others mod 11."""
    if not 6 <= len(mprn) <= 11 or not mprn.isdigit():
        return False
    digits = np.array([int(c) for c in mprn[:-2]], dtype=np.int64)
    return int(mprn_check_digits(digits[None, :])[0]) == int(mprn[-2:])
