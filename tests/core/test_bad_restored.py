"""Restored data is validated like input (docs/bad-input.md): a results cache and a monitor's log are files too.

A cache record is used only when it holds exactly the rows its layer would produce, with values of the
right types; any other record is computed again with a warning naming the cache and the line. A
malformed monitor record is one error ``LOG:LINE: problem``, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

import ww_core

from .cli_runs import run_ww

Record = dict[str, Any]


def _model(path: Path) -> None:
    rng = np.random.default_rng(11)
    tensors = {
        "fc1.weight": rng.standard_t(3, size=(96, 48)),
        "fc2.weight": rng.standard_t(4, size=(48, 64)),
        "conv.weight": rng.standard_t(3, size=(16, 8, 3, 3)),
    }
    safetensors_numpy.save_file({key: value.astype(np.float32) for key, value in tensors.items()}, str(path))


def _by_name(records: list[Record], name: str) -> Record:
    return next(record for record in records if record["rows"][0]["name"] == name)


def _set(column: str, value: Any) -> Callable[[list[Record]], None]:
    def tamper(records: list[Record]) -> None:
        _by_name(records, "fc1")["rows"][0][column] = value

    return tamper


def _other_layers_rows(records: list[Record]) -> None:
    _by_name(records, "fc1")["rows"] = [dict(row) for row in _by_name(records, "fc2")["rows"]]


def _phantom_row(records: list[Record]) -> None:
    rows = _by_name(records, "fc1")["rows"]
    rows.append({**rows[0], "alpha": 0.5})


def _phantom_named_row(records: list[Record]) -> None:
    rows = _by_name(records, "fc1")["rows"]
    rows.append({**rows[0], "name": "phantom", "alpha": 0.5})


def _drop_column(records: list[Record]) -> None:
    del _by_name(records, "fc1")["rows"][0]["alpha"]


def _row_not_object(records: list[Record]) -> None:
    _by_name(records, "fc1")["rows"][0] = ["alpha", 0.5]


#: (what the tampered record holds, how to make it)
TAMPERED = [
    ("rows of another layer", _other_layers_rows),
    ("a phantom row", _phantom_row),
    ("a phantom row naming another layer", _phantom_named_row),
    ("alpha true", _set("alpha", True)),
    ("alpha an object", _set("alpha", {"value": 0.5})),
    ("alpha a list", _set("alpha", [0.5])),
    ("alpha a string", _set("alpha", "0.5")),
    ("N huge", _set("N", "huge")),
    ("N another number", _set("N", 10**6)),
    ("name a number", _set("name", 7)),
    ("warning a number", _set("warning", 3)),
    ("status failed", _set("status", "failed")),
    ("no alpha", _drop_column),
    ("a row that is a list", _row_not_object),
]


@pytest.fixture
def cached(tmp_path: Path) -> tuple[Path, Path, ww_core.Results]:
    model, cache = tmp_path / "model.safetensors", tmp_path / "cache.jsonl"
    _model(model)
    clean = ww_core.analyze(model, cache=cache)
    return model, cache, clean


def _tamper(cache: Path, tamper: Callable[[list[Record]], None]) -> int:
    """Apply ``tamper`` to the cache's records; the 1-based line of fc1's record."""
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    tamper(records)
    cache.write_text("".join(json.dumps(record) + "\n" for record in records))
    return 1 + next(i for i, record in enumerate(records) if record["key"].split("|")[1] == "fc1")


def _same(rows: list[dict[str, Any]], clean: list[dict[str, Any]]) -> None:
    assert [row["name"] for row in rows] == [row["name"] for row in clean]
    for got, want in zip(rows, clean):
        for column, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert got[column] is None or math.isnan(got[column]), column
            else:
                assert got[column] == value, (got["name"], column, got[column], value)


@pytest.mark.parametrize(("what", "tamper"), TAMPERED, ids=[case[0] for case in TAMPERED])
def test_a_tampered_cache_record_is_computed_again_with_a_warning(
    cached: tuple[Path, Path, ww_core.Results], what: str, tamper: Callable[[list[Record]], None], caplog: pytest.LogCaptureFixture
) -> None:
    model, cache, clean = cached
    line = _tamper(cache, tamper)
    results = ww_core.analyze(model, cache=cache)
    _same(results.details, clean.details)
    assert results.summary == pytest.approx(clean.summary, nan_ok=True)
    assert f"{cache}:{line}:" in caplog.text, caplog.text


@pytest.mark.parametrize(("what", "tamper"), TAMPERED[:8], ids=[case[0] for case in TAMPERED[:8]])
@pytest.mark.parametrize("command", ["analyze", "report", "compare"])
def test_every_command_with_a_cache_recomputes_a_tampered_record(
    cached: tuple[Path, Path, ww_core.Results], what: str, tamper: Callable[[list[Record]], None], command: str
) -> None:
    model, cache, clean = cached
    line = _tamper(cache, tamper)
    out = cache.parent / ("out.html" if command == "report" else "out.json")
    argv = {
        "analyze": ["analyze", str(model), "--cache", str(cache), "--json", str(out)],
        "report": ["report", str(model), "--cache", str(cache), "-o", str(out)],
        "compare": ["compare", str(model), str(model), "--names", "a", "b", "--cache", str(cache), "--json", str(out)],
    }[command]
    code, _, err = run_ww(argv)
    assert code == 0, err
    assert "Traceback" not in err and f"{cache}:{line}:" in err, err
    if command == "analyze":
        _same(json.loads(out.read_text())["details"], clean.details)
    elif command == "compare":
        summary = json.loads(out.read_text())["models"][0]
        assert summary["alpha"] == pytest.approx(clean.summary["alpha"])


def test_an_infinite_metric_survives_the_cache(tmp_path: Path) -> None:
    """The cache writes infinities as "Infinity" (strict JSON); restored, they are floats again, not strings."""
    model, cache = tmp_path / "model.safetensors", tmp_path / "cache.jsonl"
    _model(model)
    ww_core.analyze(model, cache=cache)
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    records[0]["rows"][0]["rand_distance"] = "Infinity"
    cache.write_text("".join(json.dumps(record) + "\n" for record in records))
    restored = ww_core.analyze(model, cache=cache)
    values = [row.get("rand_distance") for row in restored.details]
    assert not any(isinstance(value, str) for value in values)


# -- monitor logs -----------------------------------------------------------------------------------------------------


def _log(path: Path) -> list[Record]:
    rng = np.random.default_rng(12)
    model = {"fc.weight": rng.standard_t(3, size=(64, 32)), "head.weight": rng.standard_normal((32, 40))}
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        for step in (1, 2):
            model["fc.weight"] += 0.1 * rng.standard_normal((64, 32))
            monitor.observe(model, step=step)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _first(records: list[Record], kind: str) -> int:
    return next(i for i, record in enumerate(records) if record["record"] == kind)


def _edit(kind: str, **changes: Any) -> Callable[[list[Record]], int]:
    def edit(records: list[Record]) -> int:
        at = _first(records, kind)
        for key, value in changes.items():
            if value is ...:
                del records[at][key]
            else:
                records[at][key] = value
        return at

    return edit


def _insert(record: Record) -> Callable[[list[Record]], int]:
    def insert(records: list[Record]) -> int:
        at = _first(records, "snapshot") + 1
        records.insert(at, record)
        return at

    return insert


#: (what the log holds, how to make it; returns the 0-based index of the bad record)
BAD_LOGS = [
    ("a warning without rule", _insert({"record": "warning", "step": 1, "time": 0.0, "message": "alpha left the band"})),
    ("a warning whose rule is a list", _insert({"record": "warning", "step": 1, "time": 0.0, "rule": [1], "message": "m"})),
    ("a skipped record without reason", _insert({"record": "skipped", "step": 1, "time": 0.0})),
    ("an error record whose error is a number", _insert({"record": "error", "step": 1, "time": 0.0, "error": 5})),
    ("a summary that is a list", _edit("snapshot", summary=[1, 2])),
    ("a summary alpha that is an object", _edit("snapshot", summary={"alpha": {"x": 1}})),
    ("a layer without name", _edit("layer", name=...)),
    ("a layer whose name is a number", _edit("layer", name=3)),
    ("a layer whose alpha is text", _edit("layer", alpha="low")),
    ("a layer whose layer_id is a float", _edit("layer", layer_id=1.5)),
    ("a step of 2**70", _edit("snapshot", step=2**70)),
    ("a step that is true", _edit("layer", step=True)),
]


@pytest.mark.parametrize(("what", "edit"), BAD_LOGS, ids=[case[0] for case in BAD_LOGS])
@pytest.mark.parametrize("output", ["history.png", "history.svg", "history.html"])
def test_plot_history_names_the_line_of_a_malformed_record(
    tmp_path: Path, what: str, edit: Callable[[list[Record]], int], output: str
) -> None:
    log = tmp_path / "run.jsonl"
    records = _log(log)
    line = edit(records) + 1
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    before = hashlib.sha256(log.read_bytes()).hexdigest()
    code, out, err = run_ww(["plot-history", str(log), "-o", str(tmp_path / output)])
    assert code == 2 and not out, err
    assert err.count("\n") == 1 and err.startswith(f"ww: error: {log}:{line}: "), err
    assert not (tmp_path / output).exists()
    assert hashlib.sha256(log.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(("what", "edit"), BAD_LOGS, ids=[case[0] for case in BAD_LOGS])
def test_load_history_names_the_line_of_a_malformed_record(tmp_path: Path, what: str, edit: Callable[[list[Record]], int]) -> None:
    log = tmp_path / "run.jsonl"
    records = _log(log)
    line = edit(records) + 1
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    with pytest.raises(ValueError, match=f"^{log}:{line}: "):
        ww_core.load_history(log)


#: lines json.loads cannot take: RecursionError and Python's 4300-digit limit were a traceback, or an error naming no line
RAW_LINES = [
    ("a line nested 100000 deep", '{"record": "layer", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("a number of 5000 digits", '{"record": "snapshot", "step": 1, "summary": {"alpha": ' + "1" * 5000 + "}}"),
]


@pytest.mark.parametrize(("what", "raw"), RAW_LINES, ids=[case[0] for case in RAW_LINES])
def test_a_log_line_json_cannot_parse_is_one_error_naming_it(tmp_path: Path, what: str, raw: str) -> None:
    log = tmp_path / "run.jsonl"
    lines = [json.dumps(record) for record in _log(log)]
    lines.insert(1, raw)
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"^{log}:2: "):
        ww_core.load_history(log)
    code, out, err = run_ww(["plot-history", str(log), "-o", str(tmp_path / "h.png")])
    assert code == 2 and not out and err.count("\n") == 1 and err.startswith(f"ww: error: {log}:2: "), err


@pytest.mark.parametrize(("what", "raw"), RAW_LINES, ids=[case[0] for case in RAW_LINES])
def test_a_cache_line_json_cannot_parse_is_computed_again(
    cached: tuple[Path, Path, ww_core.Results], what: str, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    model, cache, clean = cached
    line = len(cache.read_text().splitlines()) + 1
    with cache.open("a") as handle:
        handle.write(raw + "\n")
    results = ww_core.analyze(model, cache=cache)
    _same(results.details, clean.details)
    assert f"{cache}:{line}:" in caplog.text, caplog.text


def test_a_valid_log_with_nan_and_infinite_metrics_still_plots(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    records = _log(log)
    records[_first(records, "layer")]["alpha"] = None
    records[_first(records, "layer")]["D"] = "Infinity"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    code, _, err = run_ww(["plot-history", str(log), "-o", str(tmp_path / "h.png")])
    assert code == 0, err


@pytest.mark.parametrize("options", [{}, {"pool": False}, {"pool": False, "conv2d_fft": True}, {"randomize": True, "vectors": True}])
def test_a_valid_cache_is_used_whole_without_a_warning(
    tmp_path: Path, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The checks accept every row shape analyze writes: unpooled slices (FFT slices too) and every column set."""
    from ww_core.pipeline import analysis

    model, cache = tmp_path / "model.safetensors", tmp_path / "cache.jsonl"
    _model(model)
    first = ww_core.analyze(model, cache=cache, **options)
    computed: list[str] = []
    real = analysis.run_layer
    monkeypatch.setattr(analysis, "run_layer", lambda layer, *args: (computed.append(layer.name), real(layer, *args))[1])
    again = ww_core.analyze(model, cache=cache, **options)
    assert computed == [] and "cache" not in caplog.text
    _same(again.details, first.details)


def test_every_text_column_analyze_writes_is_known_as_text() -> None:
    """Restored rows are checked by column type: a text column missing from TEXT_COLUMNS would refuse every cache."""
    from ww_core.results.rows import TEXT_COLUMNS

    rng = np.random.default_rng(13)
    model = {
        "fc.weight": rng.standard_t(3, size=(64, 32)),
        "conv.weight": rng.standard_t(3, size=(16, 8, 3, 3)),
        "l.base_layer.weight": rng.standard_normal((64, 32)),
        "l.lora_A.weight": rng.standard_normal((4, 32)),
        "l.lora_B.weight": rng.standard_normal((64, 4)),
    }
    everything = {"pool": False, "randomize": True, "vectors": True, "mp_fit": True, "detX": True}
    for options in ({}, everything, {"peft": "with_base"}, {"fit": "TPL", "fix_fingers": "clip_xmax"}):
        for row in ww_core.analyze(model, **options).details:
            assert {column for column, value in row.items() if isinstance(value, str)} <= TEXT_COLUMNS, (options, row)
