"""Writes: nothing the user has is ever overwritten (docs/bad-input.md, "Writes").

Every hostile output goes through every route that can meet it (analyze, describe, report, compare,
plot-history on the command line; Monitor, svd_smoothing and svd_sharpness in Python): a refused
output is exit 2 and one line naming it, and no file of the user's changed (hashed before and after).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

import ww_core

from .cli_runs import run_ww

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ID = "org/net"


def _save(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tensors = {"fc1.weight": rng.standard_t(3, size=(64, 32)), "fc2.weight": rng.standard_t(4, size=(32, 48))}
    safetensors_numpy.save_file({key: value.astype(np.float32) for key, value in tensors.items()}, str(path))


@dataclass(frozen=True)
class Tree:
    """A user's files: a model folder, a model file alone in its folder, a base model, a cache, a monitor log, a cached repo."""

    root: Path
    folder: Path
    file: Path
    base: Path
    cache: Path
    log: Path
    hub: Path

    @property
    def repo(self) -> Path:
        return self.hub / "models--org--net"

    @property
    def snapshot(self) -> Path:
        return self.repo / "snapshots" / COMMIT

    def fill(self, text: str) -> str:
        """``{folder}``-style placeholders replaced by this tree's paths."""
        names = {key: os.fspath(getattr(self, key)) for key in ("root", "folder", "file", "base", "cache", "log", "snapshot", "repo")}
        return text.format(repo_id=REPO_ID, **names)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tree:
    folder, single = tmp_path / "model", tmp_path / "single"
    folder.mkdir()
    single.mkdir()
    _save(folder / "model.safetensors", 1)
    (folder / "config.json").write_text('{"architectures": ["Net"]}')
    _save(single / "net.safetensors", 2)
    _save(tmp_path / "base.safetensors", 3)
    hub = tmp_path / "hub"
    repo = hub / "models--org--net"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    _save(repo / "blobs" / "aa11", 4)
    (repo / "snapshots" / COMMIT / "model.safetensors").symlink_to(Path("..", "..", "blobs", "aa11"))
    (repo / "refs" / "main").write_text(COMMIT)
    (tmp_path / "link.json").symlink_to(folder / "model.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    made = Tree(
        tmp_path, folder, single / "net.safetensors", tmp_path / "base.safetensors", tmp_path / "cache.jsonl", tmp_path / "run.jsonl", hub
    )
    ww_core.analyze(made.file, cache=made.cache)
    _monitor_log(made.log)
    return made


def _monitor_log(path: Path) -> None:
    rng = np.random.default_rng(5)
    model = {"fc.weight": rng.standard_t(3, size=(64, 32)), "head.weight": rng.standard_normal((32, 40))}
    with ww_core.Monitor(every=1, log=path, when_behind="wait") as monitor:
        for step in (1, 2):
            model["fc.weight"] += 0.1 * rng.standard_normal((64, 32))
            monitor.observe(model, step=step)


def _hashes(root: Path) -> dict[str, str]:
    """Every file and link under ``root``: a link by its target, a file by its bytes' hash."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            key = os.fspath(path.relative_to(root))
            found[key] = f"-> {os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


#: (command line, the output that must be refused and named). ``{x}`` is a new path in the tree's root.
REFUSED_OUTPUTS = [
    # an input file itself
    ("analyze {file} --json {file}", "{file}"),
    ("analyze {file} --base {base} --csv {base}", "{base}"),
    ("describe {file} --csv {file}", "{file}"),
    ("report {file} -o {file}", "{file}"),
    ("compare {file} {folder} --json {file}", "{file}"),
    # a file a reader of an input folder picks up: one it holds, or a new one it would read
    ("analyze {folder} --json {folder}/model.safetensors", "{folder}/model.safetensors"),
    ("analyze {folder} --csv {folder}/extra.safetensors", "{folder}/extra.safetensors"),
    ("analyze {folder} --plot {folder}/model.safetensors", "{folder}/model.safetensors"),
    ("describe {folder} --json {folder}/model.safetensors.index.json", "{folder}/model.safetensors.index.json"),
    ("report {folder} -o {folder}/model.safetensors", "{folder}/model.safetensors"),
    ("analyze {folder} --json {folder}/config.json", "{folder}/config.json"),
    ("analyze {folder} --json {root}/link.json", "{root}/link.json"),  # a link into the model folder
    ("compare {file} {folder} --csv {folder}/model.safetensors", "{folder}/model.safetensors"),
    ("analyze {file} --json {root}/single/net2.safetensors", "{root}/single/net2.safetensors"),
    ("analyze {folder} --cache {folder}/cache.safetensors", "{folder}/cache.safetensors"),
    # a repo id resolves into the Hugging Face cache: nothing is ever written there
    ("analyze {repo_id} --csv {snapshot}/model.safetensors", "{snapshot}/model.safetensors"),
    ("analyze {repo_id} --json {repo}/blobs/results.json", "{repo}/blobs/results.json"),
    ("describe {repo_id} --csv {snapshot}/rows.csv", "{snapshot}/rows.csv"),
    ("report {repo_id} -o {snapshot}/report.html", "{snapshot}/report.html"),
    ("compare {file} {repo_id} --plot {repo}/plots", "{repo}/plots"),
    # the cache
    ("analyze {file} --cache {root}/new.jsonl --csv {root}/new.jsonl", "{root}/new.jsonl"),
    ("analyze {file} --cache {cache} --json {cache}", "{cache}"),
    ("report {file} --cache {cache} -o {cache}", "{cache}"),
    ("compare {file} {folder} --cache {cache} --csv {cache}", "{cache}"),
    # another output of the same run
    ("analyze {file} --csv {root}/x.out --json {root}/x.out", "{root}/x.out"),
    ("analyze {file} --csv {root}/x.out --plot {root}/x.out", "{root}/x.out"),
    ("describe {file} --csv {root}/x.out --json {root}/x.out", "{root}/x.out"),
    ("compare {file} {folder} --csv {root}/x.out --json {root}/x.out", "{root}/x.out"),
    ("analyze {file} --csv {root}/rows.csv --json ./rows.csv", "rows.csv"),
    # the monitor log
    ("plot-history {log} -o {log}", "{log}"),
]


@pytest.mark.parametrize(("command", "named"), REFUSED_OUTPUTS, ids=[case[0] for case in REFUSED_OUTPUTS])
def test_an_output_that_would_replace_the_users_files_is_refused(tree: Tree, command: str, named: str) -> None:
    before = _hashes(tree.root)
    code, out, err = run_ww(tree.fill(command).split())
    assert code == 2 and not out, (command, code, err)
    assert err.count("\n") == 1 and err.startswith("ww: error: "), err
    assert tree.fill(named) in err, err
    assert _hashes(tree.root) == before, "a file changed or appeared"


def test_a_log_whose_name_is_its_own_default_plot_is_not_replaced(tree: Tree) -> None:
    log = tree.root / "run.png"
    log.write_bytes(tree.log.read_bytes())
    before = _hashes(tree.root)
    code, _, err = run_ww(["plot-history", str(log)])
    assert code == 2 and err.count("\n") == 1 and str(log) in err, err
    assert _hashes(tree.root) == before


@pytest.mark.parametrize(
    "command",
    [
        "analyze {folder} --csv {folder}/ww-rows.csv --json {root}/rows.json --plot {root}/plots",
        "describe {folder} --csv {root}/layers.csv",
        "report {folder} -o {folder}/report.html",
        "report {folder} -o {root}/report.html",
        "compare {file} {folder} --json {root}/compare.json",
        "plot-history {log} -o {root}/history.svg",
    ],
)
def test_outputs_beside_the_inputs_are_written_and_the_inputs_kept(tree: Tree, command: str) -> None:
    """The guard refuses only what would harm: an output in a model folder that no reader picks up is fine, and
    running the same command again replaces its own earlier outputs."""
    before = _hashes(tree.root)
    for _ in range(2):
        code, _, err = run_ww(tree.fill(command).split())
        assert code == 0, err
    after = _hashes(tree.root)
    assert {key: after[key] for key in before} == before
    assert ww_core.describe(tree.folder).details, "the model folder no longer opens"


@pytest.mark.parametrize(
    ("write", "target"),
    [
        (lambda tree, path: ww_core.analyze(tree.folder).to_json(path), "{folder}/model.safetensors"),
        (lambda tree, path: ww_core.analyze(tree.file).to_csv(path), "{file}"),
        (lambda tree, path: ww_core.describe(REPO_ID).to_csv(path), "{snapshot}/rows.csv"),
        (lambda tree, path: ww_core.analyze(tree.folder).to_html(path), "{folder}/config.json"),
        (lambda tree, path: ww_core.compare(tree.file, tree.folder).to_csv(path), "{folder}/model.safetensors"),
        (lambda tree, path: ww_core.compare(tree.file, tree.folder).to_json(path), "{file}"),
        (lambda tree, path: ww_core.compare(tree.file, REPO_ID).plot(path), "{repo}/plots"),
        (
            lambda tree, path: ww_core.correlate([tree.file, tree.folder, tree.file], [1.0, 2.0, 3.0]).to_html(path),
            "{folder}/model.safetensors",
        ),
    ],
    ids=[
        "Results.to_json",
        "Results.to_csv",
        "describe.to_csv",
        "Results.to_html",
        "Comparison.to_csv",
        "Comparison.to_json",
        "Comparison.plot",
        "Correlation.to_html",
    ],
)
def test_the_python_api_guards_its_outputs_too(tree: Tree, write: Callable[[Tree, str], object], target: str) -> None:
    before = _hashes(tree.root)
    with pytest.raises(ValueError) as caught:
        write(tree, tree.fill(target))
    assert tree.fill(target) in str(caught.value)
    assert _hashes(tree.root) == before


@pytest.mark.parametrize("flag", ["--csv", "--json", "--plot", "--cache"])
def test_an_empty_output_name_is_refused_not_skipped(tree: Tree, flag: str) -> None:
    """``--csv "$OUT"`` with OUT unset wrote nothing and exited 0: the user believed the rows were saved."""
    code, out, err = run_ww(["analyze", str(tree.file), flag, "", "-q"])
    assert code == 2 and not out and err.startswith(f"ww: error: {flag}: "), err


# -- write-back (svd_smoothing, svd_sharpness) --------------------------------------------------------------------------


def test_smoothing_a_file_of_a_model_folder_writes_beside_the_folder(tree: Tree) -> None:
    """Writing ``model-smoothed.safetensors`` into the folder made the folder unreadable ("in two shards")."""
    before = _hashes(tree.root)
    written = Path(ww_core.svd_smoothing(tree.folder / "model.safetensors", method="svd", percent=0.5))
    assert tree.folder not in written.resolve().parents, written
    after = _hashes(tree.root)
    assert {key: after[key] for key in before} == before
    assert {row["name"] for row in ww_core.describe(tree.folder).details} == {"fc1", "fc2"}
    assert ww_core.describe(written).details


def test_smoothing_a_folder_writes_a_new_folder_beside_it(tree: Tree) -> None:
    before = _hashes(tree.root)
    written = Path(ww_core.svd_sharpness(tree.folder))
    assert written.parent == tree.folder.parent and written != tree.folder
    after = _hashes(tree.root)
    assert {key: after[key] for key in before} == before


@pytest.mark.parametrize("source", ["folder", "file in the folder"])
def test_write_back_never_mixes_the_new_model_with_other_weights_already_there(tree: Tree, source: str) -> None:
    """A user's ``model-smoothed/`` holding other weights got the new file beside them: the written model read as both."""
    target = tree.folder.with_name(f"{tree.folder.name}-smoothed")
    target.mkdir()
    _save(target / "other.safetensors", 7)
    before = _hashes(tree.root)
    model = tree.folder if source == "folder" else tree.folder / "model.safetensors"
    with pytest.raises(ValueError, match=r"other\.safetensors"):
        ww_core.svd_smoothing(model, method="svd", percent=0.5)
    assert _hashes(tree.root) == before
    (target / "other.safetensors").unlink()
    first = Path(ww_core.svd_smoothing(model, method="svd", percent=0.5))
    again = Path(ww_core.svd_smoothing(model, method="svd", percent=0.5))  # an earlier write-back is replaced
    assert first == again and {row["name"] for row in ww_core.describe(again).details} == {"fc1", "fc2"}


def test_smoothing_a_cached_repo_never_writes_into_the_cache(tree: Tree) -> None:
    before = _hashes(tree.hub)
    written = Path(ww_core.svd_smoothing(REPO_ID, method="svd", percent=0.5))
    assert tree.hub.resolve() not in written.resolve().parents, written
    assert _hashes(tree.hub) == before


WriteBack = Callable[..., object]


@pytest.mark.parametrize("write", [ww_core.svd_smoothing, ww_core.svd_sharpness], ids=["svd_smoothing", "svd_sharpness"])
@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("{file}", "{file}"),
        ("{folder}", "{folder}"),
        ("{folder}", "{folder}/smoothed.safetensors"),
        ("{folder}/model.safetensors", "{folder}/model-new.safetensors"),
        ("{repo_id}", "{snapshot}/model-new.safetensors"),
        ("{repo_id}", "{repo}/new"),
    ],
)
def test_write_back_into_the_model_is_refused(tree: Tree, write: WriteBack, source: str, output: str) -> None:
    before = _hashes(tree.root)
    kwargs = {"method": "svd", "percent": 0.5} if write is ww_core.svd_smoothing else {}
    with pytest.raises(ValueError, match="refusing") as caught:
        write(tree.fill(source), output=tree.fill(output), **kwargs)
    assert tree.fill(output) in str(caught.value)
    assert _hashes(tree.root) == before


#: svd_smoothing in its own process under a file-size limit (EFBIG, as ENOSPC on a full disk) below the new weights' size
FULL_DISK_WRITE_BACK = r"""
import resource, signal, sys
import ww_core

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    ww_core.svd_smoothing(sys.argv[1], output=sys.argv[2], method="svd", percent=0.5)
except OSError as exc:
    print("refused:", exc)
"""


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("kind", ["safetensors folder", "npz"])
def test_write_back_on_a_full_disk_leaves_no_half_written_weights(tree: Tree, tmp_path: Path, kind: str) -> None:
    """A full disk left a truncated model.safetensors (or an empty .npz) where the new model was to be."""
    import subprocess
    import sys

    if kind == "npz":
        source, output = tmp_path / "lone" / "m.npz", tmp_path / "out" / "m.npz"
        source.parent.mkdir()
        rng = np.random.default_rng(0)
        np.savez(source, fc1=rng.standard_normal((64, 32)), fc2=rng.standard_normal((32, 48)))
    else:
        source, output = tree.folder, tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_WRITE_BACK, str(source), str(output)], capture_output=True, text=True, timeout=300
    )
    assert done.stdout.startswith("refused:"), (done.stdout, done.stderr)
    left = [path for path in (output.rglob("*") if output.is_dir() else [output]) if path.is_file()]
    assert left == [], left


# -- the monitor's log ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["{file}", "{folder}/model.safetensors", "{cache}", "{folder}/extra.safetensors"])
def test_a_monitor_never_logs_into_a_model_or_the_cache(tree: Tree, target: str) -> None:
    before = _hashes(tree.root)
    with pytest.raises(ValueError) as caught:
        ww_core.Monitor(every=1, log=tree.fill(target))
    assert tree.fill(target) in str(caught.value)
    assert _hashes(tree.root) == before


# -- the monitor on a full disk, and two runs on one log -------------------------------------------------------------

#: A training loop in its own process whose log hits a file-size limit (EFBIG, as ENOSPC on a full disk) mid-run,
#: then gets room again. Prints what the loop saw as JSON.
FULL_DISK_RUN = r"""
import json, logging, os, resource, signal, sys, threading, time
import numpy as np
import ww_core
from ww_core.training import monitor as monitor_module

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
rng = np.random.default_rng(0)
model = {"fc.weight": rng.standard_t(3, size=(64, 32)), "head.weight": rng.standard_normal((32, 40))}
monitor, raised = ww_core.Monitor(every=1, log=sys.argv[1], when_behind="wait"), []

def observe(step):
    try:
        monitor.observe(model, step=step)
    except BaseException as exc:
        raised.append(f"{type(exc).__name__}: {exc}")

def analyzed(count):
    while len(monitor.history.steps) + len(monitor.errors) < count:
        time.sleep(0.01)

observe(1); analyzed(1)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 300, hard))  # step 2's lines torn after 300 bytes
observe(2); analyzed(2)
observe(3); analyzed(3)
gate, real = threading.Event(), monitor_module.analyze
monitor_module.analyze = lambda *args, **kwargs: (gate.wait(60), real(*args, **kwargs))[1]
monitor.when_behind = "skip"
observe(4)
while monitor.pending:  # the worker holds step 4
    time.sleep(0.01)
observe(5)  # waits in the queue
observe(6)  # skipped by observe itself; its record cannot be written either
gate.set(); analyzed(5)
monitor.when_behind, monitor_module.analyze = "wait", real
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
observe(7); monitor.close()
print(json.dumps({"raised": raised, "steps": monitor.history.steps, "write_failures": monitor.write_failures}))
"""


@pytest.mark.skipif(os.name != "posix", reason="file-size limits and flock are POSIX")
def test_a_full_disk_never_breaks_training_and_the_log_resumes(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    log = tmp_path / "run.jsonl"
    done = subprocess.run([sys.executable, "-c", FULL_DISK_RUN, str(log)], capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["raised"] == [], "the monitor raised into the training loop"
    assert seen["steps"] == [1, 2, 3, 4, 5, 7], "analysis stopped after the disk filled"
    assert seen["write_failures"] == 5  # steps 2, 3, 4, 5 and the skip of 6
    assert str(log) in done.stderr and "could not be written" in done.stderr
    history = ww_core.load_history(log)
    assert history.steps == [1, 7], "the record after the torn line was lost"
    assert history.dropped_lines >= 1


TWO_RUNS = r"""
import sys, numpy as np, ww_core
monitor = ww_core.Monitor(every=1, log=sys.argv[1], when_behind="wait")
print("ready", flush=True)
sys.stdin.readline()
monitor.close()
"""


@pytest.mark.skipif(os.name != "posix", reason="file-size limits and flock are POSIX")
def test_a_second_process_writing_the_same_log_is_warned(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "run.jsonl"
    other = subprocess.Popen([sys.executable, "-c", TWO_RUNS, str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        with pytest.warns(UserWarning, match="another process") as caught:
            ww_core.Monitor(every=1, log=log).close()
        assert str(log) in str(caught[0].message)
    finally:
        other.communicate("\n", timeout=60)


# -- plots: labels are plain text ---------------------------------------------------------------------------------------

MATHTEXT = r"$\frac{$"


def _mathtext_model(path: Path) -> None:
    rng = np.random.default_rng(6)
    tensors = {f"{MATHTEXT}.weight": rng.standard_t(3, size=(64, 32)), "fc$x^2$.weight": rng.standard_t(4, size=(32, 48))}
    safetensors_numpy.save_file({key: value.astype(np.float32) for key, value in tensors.items()}, str(path))


@pytest.mark.parametrize(
    "command",
    [
        "analyze {root}/math.safetensors --plot {root}/plots",
        "compare {root}/math.safetensors {file} --names {mathtext} b$_$ --plot {root}/plots",
        "report {root}/math.safetensors -o {root}/report.html",
        "report {root}/math.safetensors {file} --names {mathtext} b -o {root}/report.html",
        "plot-history {root}/math.jsonl -o {root}/history.png",
        "plot-history {root}/math.jsonl -o {root}/history.html",
    ],
)
def test_names_that_are_mathtext_are_drawn_as_plain_text(tree: Tree, command: str) -> None:
    import matplotlib

    _mathtext_model(tree.root / "math.safetensors")
    model = {
        name.removesuffix(".weight"): value for name, value in safetensors_numpy.load_file(str(tree.root / "math.safetensors")).items()
    }
    with ww_core.Monitor(every=1, log=tree.root / "math.jsonl", when_behind="wait") as monitor:
        monitor.observe(model, step=1)
    argv = [part.replace("{mathtext}", MATHTEXT) for part in tree.fill(command.replace("{mathtext}", "{{mathtext}}")).split()]
    code, _, err = run_ww(argv)
    assert code == 0, err
    assert matplotlib.rcParams["text.parse_math"], "the user's own matplotlib settings were changed"


def test_a_monitor_refuses_a_step_its_log_could_not_hold(tmp_path: Path) -> None:
    """A step beyond 64 bits would write a log that no reader can load back (numpy int64 series)."""
    with ww_core.Monitor(every=1, log=tmp_path / "run.jsonl", when_behind="wait") as monitor:
        with pytest.raises(ValueError, match="64 bits"):
            monitor.observe({"fc.weight": np.ones((8, 8))}, step=2**70)
    assert ww_core.load_history(tmp_path / "run.jsonl").steps == []
