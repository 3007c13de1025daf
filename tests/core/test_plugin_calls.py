"""A plugin that misbehaves when called never breaks ww: one warning naming it and its distribution, and the others go on.

Every plugin here is a real installed distribution (a module plus a dist-info with a ``ww`` entry point,
as pip leaves it); the model's rows are compared with a run without the bad plugin.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import ww_core
from tests.core import test_plugin_isolation
from ww_core.pipeline.plugins import AmbiguousSourceError, PluginError, UnknownSourceError, list_adapters, reload_plugins

#: plugins installed as distributions into a folder on sys.path (the fixture), as load-time isolation tests do
site = test_plugin_isolation.site
install_plugin = test_plugin_isolation.install_plugin

HEADER = "import sys\nimport numpy as np\nfrom ww_core import LayerMatrix, hookimpl\n"


def info(name: str, **declared: Any) -> str:
    """A ``ww_adapter_info`` hook declaring ``declared`` (suffixes, modules, catch_all)."""
    fields = {"name": name, "package": f"{name}-dist", "handles": "test sources", **declared}
    return f"@hookimpl\ndef ww_adapter_info():\n    return {fields!r}\n"


#: a ww_layers hook that claims numpy dicts and .npz files, declared as such, with a body that misbehaves
NPZ_CLAIMANT = info("bad", suffixes=[".npz"], modules=["numpy"])

LAYERS_FAULTS = {
    "raises": ("raise RuntimeError('boom')", "RuntimeError: boom"),
    "returns strings": ("return ['a', 'b']", "not a LayerMatrix"),
    "returns a number": ("return 42", "int"),
    "exits": ("sys.exit(3)", "SystemExit: 3"),
    "fails mid-listing": (
        "def gen():\n        yield LayerMatrix('ok', 0, 'dense', (4, 4), lambda: np.ones((4, 4)))\n"
        "        raise RuntimeError('mid-listing')\n    return gen()",
        "RuntimeError: mid-listing",
    ),
    "malformed layer": ("return [LayerMatrix('x', 'zero', 'dense', (4, -1), lambda: np.ones((4, 4)))]", "index"),
    "two layers, one index": (  # one of them was lost without a word
        "return [LayerMatrix('x', 0, 'dense', (60, 30), lambda: np.ones((60, 30))),"
        " LayerMatrix('y', 0, 'dense', (60, 30), lambda: np.ones((60, 30)))]",
        "index 0 is also layer 'x'",
    ),
}


def layers_hook(body: str) -> str:
    return f"@hookimpl\ndef ww_layers(source, options):\n    {body}\n"


def rows_of(results: ww_core.Results) -> str:
    """The rows as JSON text (NaN compares equal this way)."""
    return json.dumps(results.details, sort_keys=True, default=str)


@pytest.fixture(autouse=True)
def forget_plugin_modules() -> Iterator[None]:
    """Plugin modules imported by a test are forgotten after it: the next test installs another module of that name."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", None) and "site" in Path(sys.modules[name].__file__ or "").parts:
            del sys.modules[name]


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(3)
    np.savez(path, fc1=rng.standard_normal((60, 30)), fc2=rng.standard_normal((50, 40)))
    return path


def plugin_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "plugin" in r.getMessage()]


def _status(name: str) -> dict[str, Any]:
    return next(row for row in list_adapters() if row["name"] == name)


@pytest.mark.parametrize("case", sorted(LAYERS_FAULTS))
def test_a_failing_ww_layers_is_broken_for_the_run_and_others_go_on(
    case: str, site: Path, npz: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = rows_of(ww_core.analyze(npz, workers=1))
    body, reason = LAYERS_FAULTS[case]
    install_plugin(site, "bad-dist", "bad", HEADER + NPZ_CLAIMANT + layers_hook(body))
    reload_plugins()
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        first = ww_core.analyze(npz, workers=1)
        second = ww_core.analyze(npz, workers=1)
    assert rows_of(first) == rows_of(second) == expected
    assert first.adapter["name"] == "ww-core"
    warned = plugin_warnings(caplog)
    assert len(warned) == 1, warned
    assert "'bad'" in warned[0] and "bad-dist 0.3" in warned[0] and "ww_layers" in warned[0] and reason in warned[0], warned
    status = _status("bad")
    assert status["status"] == "broken" and reason in status["reason"]


def test_a_failing_adapter_chosen_explicitly_is_one_error_naming_it(site: Path, npz: Path) -> None:
    from ww_core.cli import main

    install_plugin(site, "bad-dist", "bad", HEADER + NPZ_CLAIMANT + layers_hook("raise RuntimeError('boom')"))
    reload_plugins()
    with pytest.raises(PluginError, match=r"'bad' \(bad-dist 0\.3\).*ww_layers.*RuntimeError: boom"):
        ww_core.analyze(npz, adapter="bad", workers=1)
    reload_plugins()
    assert main(["analyze", str(npz), "--adapter", "bad-dist", "-q"]) == 2


def test_ctrl_c_in_a_hook_still_interrupts(site: Path, npz: Path) -> None:
    install_plugin(site, "bad-dist", "bad", HEADER + NPZ_CLAIMANT + layers_hook("raise KeyboardInterrupt"))
    reload_plugins()
    with pytest.raises(KeyboardInterrupt):
        ww_core.analyze(npz, workers=1)


def test_sys_exit_at_import_is_a_broken_plugin(site: Path, npz: Path, caplog: pytest.LogCaptureFixture) -> None:
    expected = rows_of(ww_core.analyze(npz, workers=1))
    install_plugin(site, "exit-dist", "exiter", "import sys\nsys.exit(3)\n")
    reload_plugins()
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        assert rows_of(ww_core.analyze(npz, workers=1)) == expected
    warned = plugin_warnings(caplog)
    assert len(warned) == 1 and "exit-dist 0.3" in warned[0] and "SystemExit: 3" in warned[0], warned
    assert _status("exiter")["status"] == "broken"


INFO_ONCE = """
calls = []

@hookimpl
def ww_adapter_info():
    calls.append(1)
    if len(calls) > 1:
        raise RuntimeError('second call')
    return {'name': 'fickle', 'package': 'fickle-dist', 'handles': '.fic files', 'suffixes': ['.fic']}

@hookimpl
def ww_layers(source, options):
    return None
"""


def test_adapter_info_is_asked_once_so_ww_plugins_and_errors_never_crash(site: Path, tmp_path: Path) -> None:
    from ww_core.cli import main

    install_plugin(site, "fickle-dist", "fickle", HEADER + INFO_ONCE)
    reload_plugins()
    assert _status("fickle")["status"] == "ok" and _status("fickle")["handles"] == ".fic files"
    assert _status("fickle")["handles"] == ".fic files", "asked again: it would raise"
    assert main(["plugins"]) == 0
    unknown = tmp_path / "m.weird"
    unknown.write_bytes(b"??")
    with pytest.raises(UnknownSourceError, match="no installed adapter recognizes"):
        ww_core.describe(unknown)


def test_adapter_info_that_is_no_mapping_is_a_broken_plugin(site: Path) -> None:
    code = HEADER + "@hookimpl\ndef ww_adapter_info():\n    return ['x']\n" + layers_hook("return None")
    install_plugin(site, "listy-dist", "listy", code)
    reload_plugins()
    status = _status("listy")
    assert status["status"] == "broken" and "ww_adapter_info" in status["reason"] and "list" in status["reason"]


@pytest.mark.parametrize("suffix", ["", "npz", "."])
def test_a_suffix_without_a_dot_is_a_broken_plugin_not_a_claim_on_every_file(site: Path, npz: Path, suffix: str) -> None:
    """``"suffixes": [""]`` matched every file at the most specific level: a catch-all that outranked core's own reader."""
    install_plugin(site, "greedy-dist", "greedy", HEADER + info("greedy", suffixes=[suffix]) + HIJACKER)
    reload_plugins()
    status = _status("greedy")
    assert status["status"] == "broken" and "suffixes" in status["reason"], status
    assert ww_core.analyze(npz, workers=1).adapter["name"] == "ww-core"


@pytest.mark.parametrize("module", ["builtins", "", "numpy.linalg"])
def test_a_module_no_framework_has_is_a_broken_plugin(site: Path, npz: Path, module: str) -> None:
    """Every class derives from ``object`` (module ``builtins``): declaring it claimed every in-memory model, a state
    dict of torch tensors included, at the most specific level; a dotted name never matched at all."""
    install_plugin(site, "greedy-dist", "greedy", HEADER + info("greedy", modules=[module]) + HIJACKER)
    reload_plugins()
    status = _status("greedy")
    assert status["status"] == "broken" and "modules" in status["reason"], status
    model = {"fc": np.random.default_rng(0).standard_normal((60, 30))}
    assert ww_core.analyze(model, workers=1).adapter["name"] == "ww-core"


NOISY = """
print('noise at import')

@hookimpl
def ww_adapter_info():
    print('noise in info')
    return {'name': 'noisy', 'package': 'noisy-dist', 'handles': 'nothing', 'suffixes': ['.npz']}

@hookimpl
def ww_layers(source, options):
    print('noise in ww_layers')
    return None
"""


def _ww(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    paths = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    environment = {**os.environ, "PYTHONPATH": paths, "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "ww_core", *args], capture_output=True, text=True, env=environment, timeout=300)


def test_plugin_stdout_goes_to_stderr_so_csv_and_json_stay_clean(site: Path, npz: Path) -> None:
    clean_csv = _ww(site, "analyze", str(npz), "--csv", "-", "-q")
    install_plugin(site, "noisy-dist", "noisy", HEADER + NOISY)
    noisy_csv = _ww(site, "analyze", str(npz), "--csv", "-", "-q")
    assert noisy_csv.returncode == 0, noisy_csv.stderr
    assert noisy_csv.stdout == clean_csv.stdout
    for line in ("noise at import", "noise in info", "noise in ww_layers"):
        assert line in noisy_csv.stderr
    noisy_json = _ww(site, "analyze", str(npz), "--json", "-", "-q")
    assert noisy_json.returncode == 0 and json.loads(noisy_json.stdout)["meta"]["adapter"]["name"] == "ww-core"


CLI_FAULTS = {
    "exit at import": ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    "exit in ww_layers": (HEADER + NPZ_CLAIMANT + layers_hook("sys.exit(3)"), "SystemExit: 3"),
    "ww_layers raises": (HEADER + NPZ_CLAIMANT + layers_hook("raise RuntimeError('boom')"), "RuntimeError: boom"),
    "ww_layers returns 42": (HEADER + NPZ_CLAIMANT + layers_hook("return 42"), "returned int"),
}


@pytest.mark.parametrize("case", sorted(CLI_FAULTS))
def test_the_command_line_goes_on_with_one_warning_line(case: str, site: Path, npz: Path) -> None:
    clean = _ww(site, "analyze", str(npz), "--csv", "-", "-q")
    code, reason = CLI_FAULTS[case]
    install_plugin(site, "bad-dist", "bad", code)
    run = _ww(site, "analyze", str(npz), "--csv", "-", "-q")
    assert run.returncode == 0 and run.stdout == clean.stdout, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'bad' (bad-dist 0.3)" in lines[0] and reason in lines[0], run.stderr


HIJACKER = """
@hookimpl(tryfirst=True)
def ww_layers(source, options):
    return [LayerMatrix('hijacked', 0, 'dense', (30, 30), lambda: np.eye(30))]
"""


def test_a_catch_all_never_takes_a_source_another_adapter_declares(site: Path, npz: Path, tmp_path: Path) -> None:
    expected = rows_of(ww_core.analyze(npz, workers=1))
    in_memory = {"fc": np.random.default_rng(1).standard_normal((60, 30))}
    expected_dict = rows_of(ww_core.analyze(in_memory, workers=1))
    install_plugin(site, "grabby-dist", "grabby", HEADER + info("grabby", catch_all=True) + HIJACKER)
    reload_plugins()
    results = ww_core.analyze(npz, workers=1)
    assert rows_of(results) == expected and results.adapter["name"] == "ww-core"
    assert rows_of(ww_core.analyze(in_memory, workers=1)) == expected_dict
    nobody = tmp_path / "m.twin"
    nobody.write_bytes(b"")
    assert ww_core.describe(nobody).adapter == {"name": "grabby", "distribution": "grabby-dist", "version": "0.3"}


def test_an_adapter_that_declares_nothing_is_asked_only_when_chosen(site: Path, npz: Path, tmp_path: Path) -> None:
    expected = rows_of(ww_core.analyze(npz, workers=1))
    install_plugin(site, "silent-dist", "silent", HEADER + HIJACKER)
    reload_plugins()
    assert rows_of(ww_core.analyze(npz, workers=1)) == expected
    chosen = ww_core.describe(npz, adapter="silent")
    assert [row["name"] for row in chosen.details] == ["hijacked"] and chosen.adapter["name"] == "silent"


TWIN = """
@hookimpl
def ww_layers(source, options):
    if not str(source).endswith('.twin'):
        return None
    return [LayerMatrix('{name}.w', 0, 'dense', (40, 20), lambda: np.random.default_rng(0).standard_normal((40, 20)))]
"""


def test_two_adapters_declaring_one_source_is_an_error_naming_both(site: Path, tmp_path: Path) -> None:
    from ww_core.cli import main

    for name in ("alpha", "beta"):
        install_plugin(site, f"{name}-dist", name, HEADER + info(name, suffixes=[".twin"]) + TWIN.format(name=name))
    reload_plugins()
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    with pytest.raises(AmbiguousSourceError) as caught:
        ww_core.describe(model)
    message = str(caught.value)
    assert "alpha (alpha-dist 0.3)" in message and "beta (beta-dist 0.3)" in message and "adapter=" in message
    assert [row["name"] for row in ww_core.describe(model, adapter="beta-dist").details] == ["beta.w"]
    assert main(["describe", str(model)]) == 2


def test_the_more_specific_declaration_wins(site: Path, tmp_path: Path) -> None:
    install_plugin(site, "alpha-dist", "alpha", HEADER + info("alpha", suffixes=[".twin"]) + TWIN.format(name="alpha"))
    install_plugin(site, "broad-dist", "broad", HEADER + info("broad", catch_all=True) + TWIN.format(name="broad"))
    reload_plugins()
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    assert [row["name"] for row in ww_core.describe(model).details] == ["alpha.w"]


def test_the_terminal_table_says_which_adapter_read_the_source(npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ww_core.cli import main

    assert main(["analyze", str(npz), "--workers", "1"]) == 0
    source = capsys.readouterr().out.splitlines()[0]
    assert source.startswith(f"source: {npz} · read by ww-core (ww-core "), source
    assert main(["describe", str(npz)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == source


WRONG_SPECTRA = {
    "three fixed values": ("return [np.array([1.0, 2.0, 3.0]) for m in matrices]", "3 eigenvalues"),
    "not finite": ("return [np.full(min(m.shape), np.nan) for m in matrices]", "not finite"),
    "negative": ("return [-np.linalg.eigvalsh(m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T) for m in matrices]", "negative"),
    "wrong trace": ("return [2 * np.linalg.eigvalsh(m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T) for m in matrices]", "trace"),
    "raises": ("raise RuntimeError('no gpu')", "RuntimeError: no gpu"),
    "no list": ("return 'fast'", "str"),
}

SPECTRA_READER = """
calls = []

@hookimpl
def ww_layers(source, options):
    if not str(source).endswith('.twin'):
        return None
    rng = np.random.default_rng(0)
    w = rng.standard_normal((40, 20))
    return [LayerMatrix('w', 0, 'dense', (40, 20), lambda: w)]

@hookimpl
def ww_eigenvalues(layer, matrices, options):
    calls.append(layer.name)
    {body}
"""


@pytest.mark.parametrize("case", sorted(WRONG_SPECTRA))
def test_a_wrong_spectrum_falls_back_to_core_with_a_warning(
    case: str, site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    reference = {"w": np.random.default_rng(0).standard_normal((40, 20))}
    expected = ww_core.analyze(reference, workers=1).details
    body, reason = WRONG_SPECTRA[case]
    install_plugin(site, "spec-dist", "spec", HEADER + info("spec", suffixes=[".twin"]) + SPECTRA_READER.format(body=body))
    reload_plugins()
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        rows = ww_core.analyze(model, workers=1).details
        ww_core.analyze(model, workers=1)
    assert [row["alpha"] for row in rows] == [row["alpha"] for row in expected]
    assert [row["num_evals"] for row in rows] == [row["num_evals"] for row in expected] == [20]
    warned = plugin_warnings(caplog)
    assert len(warned) == 1, warned
    assert "'spec'" in warned[0] and "spec-dist 0.3" in warned[0] and "ww_eigenvalues" in warned[0] and reason in warned[0]


def test_a_right_spectrum_from_the_reader_is_used(site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    body = "return [np.linalg.eigvalsh(m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T) for m in matrices]"
    install_plugin(site, "spec-dist", "spec", HEADER + info("spec", suffixes=[".twin"]) + SPECTRA_READER.format(body=body))
    reload_plugins()
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        rows = ww_core.analyze(model, workers=1).details
    assert not plugin_warnings(caplog)
    assert sys.modules["spec"].calls == ["w"]
    expected = ww_core.analyze({"w": np.random.default_rng(0).standard_normal((40, 20))}, workers=1).details
    assert rows[0]["alpha"] == pytest.approx(expected[0]["alpha"], rel=1e-6)


def test_a_spectra_hook_refusing_the_users_option_fails_the_row_saying_why(site: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.twin"
    model.write_bytes(b"")
    body = "raise ValueError('spec_device ' + repr(options.get('spec_device')) + ' does not exist')"
    install_plugin(site, "spec-dist", "spec", HEADER + info("spec", suffixes=[".twin"]) + SPECTRA_READER.format(body=body))
    reload_plugins()
    rows = ww_core.analyze(model, workers=1, extra={"spec.spec_device": "nonsense"}).details
    assert [row["status"] for row in rows] == ["failed"] and "spec_device 'nonsense' does not exist" in rows[0]["error"]


FIXED_SPECTRA = """
calls = []

@hookimpl
def ww_eigenvalues(layer, matrices, options):
    calls.append(layer.name)
    return [np.array([1.0, 2.0, 3.0]) for m in matrices]
"""


def test_a_spectra_hook_of_another_adapter_is_never_asked(site: Path, npz: Path) -> None:
    expected = rows_of(ww_core.analyze(npz, workers=1))
    install_plugin(site, "fixed-dist", "fixed", HEADER + FIXED_SPECTRA)
    reload_plugins()
    assert rows_of(ww_core.analyze(npz, workers=1)) == expected
    assert rows_of(ww_core.analyze(npz, workers=2)) == expected
    assert sys.modules["fixed"].calls == []


def test_entry_point_name_collisions_keep_both_distributions(site: Path, tmp_path: Path) -> None:
    for dist, suffix in (("twin-a", ".ta"), ("twin-b", ".tb")):
        module = dist.replace("-", "_")
        code = HEADER + info(dist, suffixes=[suffix]) + TWIN.format(name=dist).replace(".twin", suffix)
        (site / f"{module}.py").write_text(code)
        info_dir = site / f"{module}-0.3.dist-info"
        info_dir.mkdir()
        (info_dir / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
        (info_dir / "entry_points.txt").write_text(f"[ww]\ntwin = {module}\n")  # the same entry-point name
    reload_plugins()
    for dist, suffix in (("twin-a", ".ta"), ("twin-b", ".tb")):
        model = tmp_path / f"m{suffix}"
        model.write_bytes(b"")
        found = ww_core.describe(model)
        assert [row["name"] for row in found.details] == [f"{dist}.w"] and found.adapter["distribution"] == dist
    rows = [row for row in list_adapters() if row["distribution"] in ("twin-a", "twin-b")]
    assert sorted(row["distribution"] for row in rows) == ["twin-a", "twin-b"] and {row["status"] for row in rows} == {"ok"}
    with pytest.raises(AmbiguousSourceError, match=r"twin \(twin-a 0\.3\) and twin \(twin-b 0\.3\)"):
        ww_core.describe(tmp_path / "m.ta", adapter="twin")
    assert ww_core.describe(tmp_path / "m.tb", adapter="twin-b").adapter["distribution"] == "twin-b"


def test_plugins_flag_and_timing(site: Path, npz: Path) -> None:
    slow = HEADER + info("slowpoke", suffixes=[".npz"]) + layers_hook("import time; time.sleep(0.2); return None")
    install_plugin(site, "slow-dist", "slowpoke", slow)
    listing = _ww(site, "--plugins", "none", "plugins")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith("slowpoke "))
    assert "[disabled: not in --plugins/WW_PLUGINS" in line
    run = _ww(site, "-v", "analyze", str(npz), "-q", "--workers", "1")
    assert run.returncode == 0, run.stderr
    timing = [line for line in run.stderr.splitlines() if "slowpoke" in line and "ww_layers" in line and " s" in line]
    assert timing, run.stderr
    timed = _ww(site, "plugins", "--timing")
    assert timed.returncode == 0 and "slowpoke" in timed.stdout and "import" in timed.stdout, timed.stderr


@pytest.mark.parametrize("variable", ["WW_PLUGINS", "WW_DISABLE_PLUGINS"])
def test_a_plugin_list_naming_no_installed_plugin_is_warned(
    variable: str, site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # a typo left every plugin out (WW_PLUGINS=torchh), or the plugin meant to be kept out in (WW_DISABLE_PLUGINS)
    install_plugin(site, "alpha-dist", "alpha", HEADER + info("alpha", suffixes=[".twin"]) + TWIN.format(name="alpha"))
    monkeypatch.setenv(variable, "alpah,first-party,none,torch,alpha-dist")
    with caplog.at_level(logging.WARNING, logger="ww_core"):
        reload_plugins()
        list_adapters()
    warned = [r.getMessage() for r in caplog.records if variable in r.getMessage()]
    assert len(warned) == 1 and "'alpah'" in warned[0] and "first-party" not in warned[0].split("installed")[0], warned
    done = _ww(site, "--plugins", "torchh", "plugins")
    assert done.returncode == 0 and "'torchh'" in done.stderr, done.stderr


FORGER = """
@hookimpl
def ww_adapter_info():
    return {"name": "forger", "package": "forger-dist", "handles": "x\\x1b[2J\\nww: error: forged", "suffixes": [".forge"],
            "options": [{"name": "o", "type": "str", "default": "\\x1b[31m", "help": "h\\nww: error: forged help"}]}

@hookimpl
def ww_layers(source, options):
    return None
"""


def test_ww_plugins_escapes_what_a_plugin_says_about_itself(site: Path) -> None:
    """A plugin's ``handles`` and option help reached the terminal raw: a screen clear and a forged ``ww: error:`` line."""
    install_plugin(site, "forger-dist", "forger", HEADER + FORGER)
    for args in (["plugins"], ["plugins", "forger"]):
        done = _ww(site, *args)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and not any(line.startswith("ww: error: forged") for line in done.stdout.splitlines())
        assert "\\x1b[2J\\nww: error: forged" in done.stdout, done.stdout


VERDICT_EVERYWHERE = """
@hookimpl
def ww_layers(source, options):
    raise ValueError("cannot read this")
"""


def test_a_third_party_verdict_names_the_plugin_that_gave_it(site: Path, tmp_path: Path) -> None:
    """A catch-all plugin refusing every source it is asked about gave 'ww: error: cannot read this', naming no one."""
    install_plugin(site, "verdict-dist", "verdict", HEADER + info("verdict", catch_all=True) + VERDICT_EVERYWHERE)
    reload_plugins()
    with pytest.raises(ValueError, match=r"cannot read this.*'verdict' \(verdict-dist 0\.3\)"):
        ww_core.analyze({}, workers=1)
    source = tmp_path / "x.unknown"
    source.touch()
    done = _ww(site, "analyze", str(source))
    assert done.returncode == 2 and "cannot read this" in done.stderr and "verdict-dist" in done.stderr, done.stderr


def test_a_source_only_a_broken_plugin_declares_says_that_plugin_is_broken(site: Path, tmp_path: Path) -> None:
    """The error said 'No known adapter package handles it' of a file whose suffix a plugin declares, broken in this run."""
    failing = info("crashy", suffixes=[".crash"]) + layers_hook("raise RuntimeError('boom')")
    install_plugin(site, "crashy-dist", "crashy", HEADER + failing)
    reload_plugins()
    source = tmp_path / "model.crash"
    source.touch()
    with pytest.raises(UnknownSourceError, match=r"crashy-dist is installed but broken \(ww_layers: RuntimeError: boom\)"):
        ww_core.analyze(source, workers=1)
