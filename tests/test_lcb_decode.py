"""Decoding LiveCodeBench test fields: real formats decode, hostile pickles never run."""

from __future__ import annotations

import base64
import builtins
import io
import json
import os
import pickle
import zlib
from pathlib import Path

import pytest
from conftest import benchmark_path

from evals.errors import DataError
from evals.grading.lcb import PlainDataUnpickler, decode_private_tests, parse_public_tests
from evals.grading.lcb import TestCase as Case

LCB_SAMPLE = "livecodebench/code_generation_lite_sample.jsonl"  # via benchmark_path


def _rows() -> list[dict[str, str]]:
    lines = benchmark_path(LCB_SAMPLE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _encode(value: object) -> str:
    """LiveCodeBench's encoding: base64(zlib(pickle(value)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(value))).decode()


def test_the_sample_private_fields_decode_to_empty_lists():
    rows = _rows()
    assert len(rows) == 60
    for row in rows:
        assert decode_private_tests(row["private_test_cases"]) == []


def test_the_sample_public_fields_parse():
    rows = _rows()
    tests = [t for row in rows for t in parse_public_tests(row["public_test_cases"])]
    assert len(tests) == 151  # SOURCE.md: 151 rebuilt tests
    kinds = {row["question_id"]: {t.testtype for t in parse_public_tests(row["public_test_cases"])}
             for row in rows}
    assert kinds["abc301_a"] == {"stdin"} and kinds["2777"] == {"functional"}


def test_real_format_payload_decodes_to_test_cases():
    # As the dataset stores them: a pickled JSON *string* of the list.
    cases = [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"},
             {"input": "[1,2]\n3", "output": "[4,5]", "testtype": "functional"}]
    decoded = decode_private_tests(_encode(json.dumps(cases)))
    assert decoded == [Case("3\n1 2 3\n", "6\n", "stdin"),
                       Case("[1,2]\n3", "[4,5]", "functional")]
    # Early shards store plain JSON; the reference loader tries that first.
    assert decode_private_tests(json.dumps(cases)) == decoded
    assert decode_private_tests("") == []


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class _OpensFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return builtins.open, (str(self.marker), "w")


@pytest.mark.parametrize("payload_class", [_RunsShell, _OpensFile], ids=["os.system", "open"])
def test_a_payload_that_would_run_code_is_refused_and_nothing_runs(tmp_path, payload_class):
    live = tmp_path / "live"
    # The payload is real: plain pickle.loads runs it ...
    ran = pickle.loads(zlib.decompress(base64.b64decode(_encode(payload_class(live)))))
    if hasattr(ran, "close"):
        ran.close()
    assert live.exists()
    # ... the decoder refuses it and nothing happens.
    marker = tmp_path / "marker"
    with pytest.raises(DataError, match=r"refused to unpickle.*(system|open)"):
        decode_private_tests(_encode(payload_class(marker)), where="abc999_z private tests")
    assert not marker.exists()


def test_a_payload_hidden_inside_plain_data_is_refused(tmp_path):
    marker = tmp_path / "marker"
    nested = [{"input": "1", "output": "1", "testtype": "stdin"}, _RunsShell(marker)]
    with pytest.raises(DataError, match="posix.system|os.system"):
        decode_private_tests(_encode(nested))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_unpickler_admits_plain_data_in_every_protocol(protocol):
    value = {"s": "x", "i": 2**70, "f": 1.5, "l": [1, (2, 3)], "t": True, "n": None}
    if protocol >= 4:  # bytes and sets have their own opcodes from these protocols on
        value.update(b=b"y", set={1, 2}, fs=frozenset({3}))
    raw = pickle.dumps(value, protocol=protocol)
    assert PlainDataUnpickler(io.BytesIO(raw)).load() == value


def test_a_zlib_bomb_is_refused_before_it_expands():
    field = _encode("x" * 100_000)
    with pytest.raises(DataError, match="more than 10000 bytes"):
        decode_private_tests(field, max_bytes=10_000)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("not base64 at all!", "neither JSON nor base64"),
        (base64.b64encode(b"plain bytes").decode(), "not zlib-compressed"),
        (base64.b64encode(zlib.compress(b"\x80\x04garbage")).decode(), "not a valid pickle"),
        (_encode("not json"), "not JSON"),
        (_encode(json.dumps({"input": "1"})), "expected a list"),
        (_encode(json.dumps([{"input": "1", "output": "2", "testtype": "exec"}])),
         "testtype 'exec'"),
        (_encode(json.dumps([{"input": 1, "output": "2", "testtype": "stdin"}])),
         "lacks string 'input'"),
    ],
    ids=["not-base64", "not-zlib", "garbled-pickle", "not-json", "not-a-list",
         "bad-testtype", "non-string-input"],
)
def test_malformed_fields_are_data_errors(field, message):
    with pytest.raises(DataError, match=message):
        decode_private_tests(field)


def test_a_functional_output_that_is_not_json_is_a_data_error():
    good = json.dumps([{"input": "[1, 2]", "output": "3", "testtype": "functional"}])
    assert parse_public_tests(good)[0].output == "3"
    bad = json.dumps([{"input": "[1, 2]", "output": "three", "testtype": "functional"}])
    with pytest.raises(DataError, match="test 1's output is not a JSON value"):
        parse_public_tests(bad)
