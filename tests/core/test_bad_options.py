"""Options and messages (docs/bad-input.md): every option checked before any work, CSV cells that cannot run as
formulas, and messages that stay one line whatever a file is called."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

import ww_core

from .cli_runs import run_ww


def _save(path: Path, names: tuple[str, ...] = ("fc1.weight", "fc2.weight"), seed: int = 21) -> Path:
    rng = np.random.default_rng(seed)
    shapes = [(64, 32), (32, 48)]
    safetensors_numpy.save_file({name: rng.standard_t(3, size=shapes[i % 2]).astype(np.float32) for i, name in enumerate(names)}, str(path))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return _save(tmp_path / "model.safetensors")


# -- options: refused when invalid, warned about when they change nothing -----------------------------------------------

#: (flags, what the error names). Each is refused before any layer is read, on every command that takes it.
REFUSED_OPTIONS = [
    (["--seed", "-1"], "--seed"),
    (["--fix-fingers", "xmin_peak", "--xmin-max", "-1"], "--xmin-max"),
    (["--fix-fingers", "xmin_peak", "--xmin-max", "0"], "--xmin-max"),
    (["--fix-fingers", "xmin_peak", "--xmin-max", "nan"], "--xmin-max"),
    (["--fix-fingers", "clip_xmax", "--max-fingers", "-2"], "--max-fingers"),
    (["--fix-fingers", "clip_xmax", "--finger-thresh", "nan"], "--finger-thresh"),
    (["--max-N", "0"], "--max-N"),
]


@pytest.mark.parametrize(("flags", "named"), REFUSED_OPTIONS, ids=[" ".join(case[0]) for case in REFUSED_OPTIONS])
@pytest.mark.parametrize("command", ["analyze", "report", "compare"])
def test_an_invalid_option_is_refused_in_one_line(model: Path, flags: list[str], named: str, command: str) -> None:
    extra = {"report": ["-o", str(model.parent / "r.html")], "compare": [str(model)]}.get(command, [])
    argv = [command, str(model), *extra, *flags]
    code, out, err = run_ww(argv)
    assert code == 2 and not out, err
    assert err.count("\n") == 1 and err.startswith("ww: error: ") and named in err, err
    assert not (model.parent / "r.html").exists()


@pytest.mark.parametrize(("flags", "named"), REFUSED_OPTIONS, ids=[" ".join(case[0]) for case in REFUSED_OPTIONS])
def test_an_invalid_option_is_refused_by_the_api(model: Path, flags: list[str], named: str) -> None:
    from ww_core.cli import build_parser
    from ww_core.cli.option_flags import option_kwargs

    kwargs = option_kwargs(build_parser().parse_args(["analyze", str(model), *flags]))
    with pytest.raises(ValueError, match=named.removeprefix("--").replace("-", "_")):
        ww_core.analyze(model, **kwargs)


#: API values that only the Python API can pass: a string for a switch was truthy (trust_pickle="false" allowed
#: unpickling, mp_fit="False" fitted), NaN as a limit compared false (no limit), None was a TypeError
API_REFUSED = [
    ("trust_pickle", "false"),
    ("mp_fit", "False"),
    ("pool", "no"),
    ("randomize", 2),
    ("exact", None),
    ("max_evals", float("nan")),
    ("min_evals", None),
    ("max_evals", "100"),
]


@pytest.mark.parametrize(("keyword", "value"), API_REFUSED, ids=[f"{k}={v!r}" for k, v in API_REFUSED])
def test_a_value_of_the_wrong_kind_is_refused_by_the_api(model: Path, keyword: str, value: object) -> None:
    with pytest.raises(ValueError, match=keyword):
        ww_core.analyze(model, **{keyword: value})


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 0, 1])
def test_a_switch_takes_bools_and_0_or_1(model: Path, value: object) -> None:
    assert ww_core.analyze(model, mp_fit=value).details


def test_layer_ids_as_numpy_integers_select_like_ints(model: Path) -> None:
    """``layers=[np.int64(1)]`` (ids taken from a details DataFrame) selected nothing, silently."""
    expected = [row["status"] for row in ww_core.analyze(model, layers=[1]).details]
    assert expected.count("success") == 1
    assert [row["status"] for row in ww_core.analyze(model, layers=[np.int64(1)]).details] == expected
    assert [row["status"] for row in ww_core.analyze(model, layers=np.array([1])).details] == expected
    assert [row["status"] for row in ww_core.analyze(model, layers=[np.int64(-1)]).details] == expected[::-1]


@pytest.mark.parametrize("entry", [True, 1.5, None, b"fc1"])
def test_a_layers_entry_that_is_no_id_or_name_is_refused(model: Path, entry: object) -> None:
    with pytest.raises(ValueError, match="layers"):
        ww_core.analyze(model, layers=[entry])


#: (flags, the option that has no effect, the one it needs)
IGNORED_OPTIONS = [
    (["--xmin-max", "5"], "xmin_max", "xmin_peak"),
    (["--fix-fingers", "clip_xmax", "--xmin-max", "5"], "xmin_max", "xmin_peak"),
    (["--max-fingers", "3"], "max_fingers", "clip_xmax"),
    (["--finger-thresh", "0.5"], "finger_thresh", "clip_xmax"),
]


@pytest.mark.parametrize(("flags", "option", "needs"), IGNORED_OPTIONS, ids=[" ".join(case[0]) for case in IGNORED_OPTIONS])
def test_an_option_without_effect_is_warned_about(model: Path, flags: list[str], option: str, needs: str) -> None:
    code, _, err = run_ww(["analyze", str(model), "-q", *flags])
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("ww: warning: ")]
    assert len(warnings) == 1 and option in warnings[0] and needs in warnings[0], err
    alphas = [row["alpha"] for row in ww_core.analyze(model).details]
    with pytest.warns(UserWarning, match=option):
        ignored = ww_core.analyze(model, **{option: 5 if option != "finger_thresh" else 0.5})
    assert [row["alpha"] for row in ignored.details] == alphas


def test_xmin_max_bounds_the_chosen_xmin(model: Path) -> None:
    free = ww_core.analyze(model, fix_fingers="xmin_peak")
    bound = max(row["xmin"] for row in free.details) * 0.9  # below the xmin chosen freely for one layer
    bounded = [row for row in ww_core.analyze(model, fix_fingers="xmin_peak", xmin_max=bound).details if row["status"] == "success"]
    assert bounded and all(row["xmin"] <= bound for row in bounded), "xmin chosen above xmin_max"


@pytest.mark.parametrize("address", ["local:²", "local:٣", "local:1.5", "local:-1", "local:"])
@pytest.mark.parametrize("flag", ["--dask", "--ray"])
def test_a_cluster_size_that_is_no_ascii_number_is_one_clear_line(model: Path, address: str, flag: str) -> None:
    code, _, err = run_ww(["analyze", str(model), flag, address])
    assert code == 2 and err.count("\n") == 1, err
    assert f"{flag} {address}" in err and "local:N" in err and "invalid literal" not in err, err


# -- CSV cells are never formulas -------------------------------------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://x","y").weight', "+1+2.weight", "-3-4.weight", "@SUM(A1).weight", "\tTAB.weight", "\rCR.weight")


def _formula_model(tmp_path: Path) -> Path:
    return _save(tmp_path / "formula.safetensors", FORMULAS)


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _no_formula(text: str, kept: str = "'=HYPERLINK") -> None:
    cells = _cells(text)
    dangerous = [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r") or (cell[:1] == "-" and not _number(cell))]
    assert not dangerous, dangerous
    assert any(cell.startswith(kept) for cell in cells), cells


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", "{model}", "--csv", "{out}"],
        ["describe", "{model}", "--csv", "{out}"],
        ["analyze", "{model}", "--csv", "-"],
        ["compare", "{model}", "{other}", "--names", '=HYPERLINK("http://x","y")', "+1+2", "--csv", "{out}"],
    ],
)
def test_csv_cells_that_start_like_a_formula_are_neutralized(tmp_path: Path, command: list[str]) -> None:
    paths = {"model": str(_formula_model(tmp_path)), "other": str(_save(tmp_path / "other.safetensors")), "out": str(tmp_path / "rows.csv")}
    code, out, err = run_ww([part.format(**paths) if part.startswith("{") else part for part in command])
    assert code == 0, err
    _no_formula(out if "-" in command else (tmp_path / "rows.csv").read_text())


def test_the_api_csv_is_neutralized_too(tmp_path: Path) -> None:
    model = _formula_model(tmp_path)
    _no_formula(ww_core.analyze(model).to_csv())
    _no_formula(ww_core.describe(model).to_csv())
    _no_formula(ww_core.compare(model, model, names=["=1+1", "-x"]).to_csv(), kept="'=1+1")


def test_numbers_and_json_keep_their_values(tmp_path: Path) -> None:
    """Only text cells are changed: negative numbers stay numbers, and JSON holds the names as they are."""
    model = _formula_model(tmp_path)
    results = ww_core.analyze(model)
    rows = list(csv.DictReader(io.StringIO(results.to_csv())))
    assert all(_number(row["ww_maxdist"]) or row["ww_maxdist"] in ("", "nan") for row in rows if "ww_maxdist" in row)
    assert {row["longname"] for row in json.loads(results.to_json())["details"]} == set(FORMULAS)


# -- messages: whatever a file is called, one line --------------------------------------------------------------------

FORGING = "b\x1b[31mRED\nww: error: forged"


@pytest.mark.parametrize("command", ["analyze", "describe", "report", "compare"])
def test_a_file_name_with_escapes_and_newlines_cannot_forge_lines(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    _save(folder / "a.safetensors")
    (folder / f"{FORGING}.safetensors").write_bytes(b"xx")
    argv = [command, str(folder), *(["-o", str(tmp_path / "r.html")] if command == "report" else [])]
    argv += [str(folder)] if command == "compare" else []
    code, _, err = run_ww(argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ww: error: "), err
    assert "\x1b" not in err and "\\x1b[31mRED\\nww: error: forged" in err, err


def test_a_warning_naming_a_file_is_escaped_too(tmp_path: Path) -> None:
    cache = tmp_path / f"{FORGING}.jsonl"
    model = _save(tmp_path / "model.safetensors")
    ww_core.analyze(model, cache=cache)
    with cache.open("a") as handle:
        handle.write("not json\n")
    code, _, err = run_ww(["analyze", str(model), "-q", "--cache", str(cache)])
    assert code == 0, err
    assert "\x1b" not in err and all(line.startswith("ww: ") for line in err.splitlines()), err


def test_the_escaping_helper_is_public() -> None:
    from ww_core.toolkit import printable

    assert printable("a\x1b[1m\nb\u202ec") == "a\\x1b[1m\\nb\\u202ec"
    assert printable("naïve λ.safetensors") == "naïve λ.safetensors"


@pytest.mark.skipif(os.name != "posix", reason="file names are bytes on POSIX only")
@pytest.mark.parametrize("command", ["report", "analyze", "compare"])
def test_a_file_name_that_is_not_utf8_still_gets_its_outputs(tmp_path: Path, command: str) -> None:
    model = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/r\xffx.safetensors"))
    _save(model)
    out = {"report": tmp_path / "r.html", "analyze": tmp_path / "rows.json", "compare": tmp_path / "c.json"}[command]
    argv: dict[str, list[Any]] = {
        "report": ["report", model, "-o", out],
        "analyze": ["analyze", model, "--json", out, "--csv", tmp_path / "rows.csv", "-q"],
        "compare": ["compare", model, model, "--names", "a", "b", "--json", out],
    }
    code, _, err = run_ww([str(part) for part in argv[command]])
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "r\ufffdx.safetensors" in text or "r\\udcffx.safetensors" in text


def test_numpy_numbers_are_options_like_python_ones(model: Path) -> None:
    results = ww_core.analyze(model, seed=np.int64(3), randomize=True, fix_fingers="xmin_peak", xmin_max=np.float32(1e6))
    assert all(row["status"] == "success" for row in results.details)
