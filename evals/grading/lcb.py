"""LiveCodeBench test cases: decoding the public and private test fields safely.

A ``code_generation_lite`` row carries its tests in two fields, each a list of
``{"input", "output", "testtype"}`` objects once decoded:

* ``public_test_cases``: a JSON string.
* ``private_test_cases``: in early shards a JSON string too; in later ones
  ``base64(zlib(pickle(json_string)))``. The reference loader
  (``lcb_runner/benchmarks/code_generation.py``) tries ``json.loads`` first and then
  calls ``pickle.loads`` on the decompressed bytes, which runs whatever the pickle asks
  for. Here the pickle goes through ``PlainDataUnpickler``, whose ``find_class`` refuses
  every global: strings, bytes, numbers, lists, tuples, dicts, sets, booleans and
  ``None`` are built by pickle opcodes that never look a class up, so plain data decodes
  and a payload that wants ``os.system`` (or any other callable, via ``__reduce__``)
  raises ``DataError`` before anything is called. Decompression is bounded too, so a
  zlib bomb cannot exhaust memory.

Example:
    >>> decode_private_tests("eJxrYJnKxgABPUzRsVP0ABkLAyg=")
    []
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any, Literal, NamedTuple

from evals.errors import DataError

__all__ = [
    "MAX_DECODED_BYTES",
    "PlainDataUnpickler",
    "RefusedGlobal",
    "TestCase",
    "decode_private_tests",
    "encode_private_tests",
    "parse_public_tests",
]

#: The most bytes a private-test field may decompress to (the largest real problems of
#: ``code_generation_lite`` are far below this).
MAX_DECODED_BYTES = 256 * 1024 * 1024

TestType = Literal["stdin", "functional"]


class TestCase(NamedTuple):
    """One test of a problem.

    Attributes:
        input: for ``stdin`` tests the program's standard input; for ``functional`` tests
            one JSON value per argument, joined by newlines.
        output: the expected standard output, or the JSON of the expected return value.
        testtype: ``"stdin"`` or ``"functional"``.
    """

    input: str
    output: str
    testtype: TestType


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global (a class or a callable)."""


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that admits only plain data: it refuses to look up any global.

    Every way a pickle can call code (``REDUCE``, ``BUILD``, ``INST``, ``OBJ``,
    ``NEWOBJ``, extension codes) first needs a callable or class from ``find_class``,
    and ``persistent_load`` is left unset, so it raises too. Plain data means what
    pickle builds from opcodes alone: ``str``, ``int``, ``float``, ``bool``, ``None``,
    lists, tuples and dicts in every protocol; ``bytes`` from protocol 3 and sets from
    protocol 4 (older protocols rebuild those through ``_codecs.encode`` and
    ``builtins.set``, which are refused). LiveCodeBench's payload is a ``str``.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise RefusedGlobal(
            f"the pickle asks for the global {module}.{name}; only plain data "
            "(str, bytes, numbers, lists, tuples, dicts, bool, None) is admitted"
        )


def _bounded_decompress(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail or len(out) > limit:
        raise DataError(
            f"private test cases decompress to more than {limit} bytes; refusing to "
            "expand them further (a corrupt or hostile dataset row?)"
        )
    return out + inflater.flush()


def decode_private_tests(field: str, *, max_bytes: int = MAX_DECODED_BYTES,
                         where: str = "private_test_cases") -> list[TestCase]:
    """Decode a ``private_test_cases`` field: JSON, or base64 + zlib + pickle of JSON.

    Args:
        field: the raw field. An empty string means no private tests.
        max_bytes: refuse fields that decompress to more than this.
        where: names the field in error messages (e.g. ``"abc301_a private tests"``).

    Returns:
        The tests, in dataset order.

    Raises:
        DataError: the field is neither JSON nor the encoded form, the pickle refers to
            any global (it would run code), it expands past ``max_bytes``, or the decoded
            value is not a list of ``{input, output, testtype}``.
    """
    text = field.strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            return _as_tests(json.loads(text), where)
        except json.JSONDecodeError:
            pass  # not JSON after all: try the encoded form
    try:
        compressed = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise DataError(f"{where}: neither JSON nor base64 ({exc}).") from exc
    try:
        raw = _bounded_decompress(compressed, max_bytes)
    except zlib.error as exc:
        raise DataError(f"{where}: base64 but not zlib-compressed ({exc}).") from exc
    try:
        value = PlainDataUnpickler(io.BytesIO(raw)).load()
    except RefusedGlobal as exc:
        raise DataError(
            f"{where}: refused to unpickle: {exc}. LiveCodeBench's private tests are a "
            "pickled JSON string; this payload is something else and was not run."
        ) from exc
    except Exception as exc:  # truncated or garbled pickles raise many types
        raise DataError(f"{where}: not a valid pickle ({type(exc).__name__}: {exc}).") from exc
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: the unpickled string is not JSON ({exc}).") from exc
    return _as_tests(value, where)


def encode_private_tests(tests: list[TestCase]) -> str:
    """A ``private_test_cases`` field in LiveCodeBench's later encoding (base64 of zlib of
    a pickled JSON string), e.g. to write a local copy or a generated file in its shape.

    Example:
        >>> encode_private_tests([])
        'eJxrYJnKxgABPUzRsVP0ABkLAyg='
    """
    text = json.dumps([t._asdict() for t in tests])
    return base64.b64encode(zlib.compress(pickle.dumps(text, protocol=4))).decode("ascii")


def parse_public_tests(field: str, *, where: str = "public_test_cases") -> list[TestCase]:
    """Parse a ``public_test_cases`` field (a JSON string).

    Raises:
        DataError: not JSON, or not a list of ``{input, output, testtype}``.
    """
    if not field.strip():
        return []
    try:
        value = json.loads(field)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON ({exc}).") from exc
    return _as_tests(value, where)


def _as_tests(value: Any, where: str) -> list[TestCase]:
    if not isinstance(value, list):
        raise DataError(f"{where}: expected a list of tests, got {type(value).__name__}.")
    tests: list[TestCase] = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise DataError(f"{where}: test {number} is a {type(item).__name__}, not an "
                            "object with input, output and testtype.")
        given, expected, kind = item.get("input"), item.get("output"), item.get("testtype")
        if not isinstance(given, str) or not isinstance(expected, str):
            raise DataError(f"{where}: test {number} lacks string 'input' and 'output'.")
        if kind not in ("stdin", "functional"):
            raise DataError(f"{where}: test {number} has testtype {kind!r}; expected "
                            "'stdin' or 'functional'.")
        if kind == "functional":  # the runner compares it as a JSON value
            try:
                json.loads(expected)
            except ValueError:
                raise DataError(f"{where}: test {number}'s output is not a JSON value "
                                f"({expected[:60]!r}).") from None
        tests.append(TestCase(given, expected, kind))
    return tests
