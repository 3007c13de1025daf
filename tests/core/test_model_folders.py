"""Where users keep models: PEFT adapter folders from the command line, Hugging Face cache folders and repo ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core import testing
from ww_core.cli import main

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _peft_folder(folder: Path) -> Path:
    """What ``PeftModel.save_pretrained`` writes: adapter_config.json and adapter_model.safetensors."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    prefix = "base_model.model.model.layers.0.self_attn"
    tensors = {}
    for proj in ("q_proj", "v_proj"):
        tensors[f"{prefix}.{proj}.lora_A.weight"] = rng.standard_t(3, size=(8, 64)).astype(np.float32)
        tensors[f"{prefix}.{proj}.lora_B.weight"] = rng.standard_t(3, size=(64, 8)).astype(np.float32)
    safetensors_numpy.save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]}))
    return folder


@pytest.mark.parametrize(("flags", "analyzed"), [(["--peft"], 2), (["--peft", "with_base"], 6)])
def test_peft_adapter_folder_from_the_command_line(tmp_path: Path, flags: list[str], analyzed: int) -> None:
    folder = _peft_folder(tmp_path / "adapter")
    out = tmp_path / "rows.json"
    assert main(["analyze", str(folder), "--min-evals", "4", "--json", str(out), "-q", *flags]) == 0
    rows = [row for row in json.loads(out.read_text())["details"] if row["status"] == "success"]
    assert len(rows) == analyzed
    assert {row["name"] for row in rows} >= {f"base_model.model.model.layers.0.self_attn.{p}.lora_BA" for p in ("q_proj", "v_proj")}


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _tiny_safetensors(path: Path, seed: int = 4) -> None:
    rng = np.random.default_rng(seed)
    tensors = {"fc1.weight": rng.standard_t(3, size=(48, 32)), "fc2.weight": rng.standard_normal((32, 48))}
    safetensors_numpy.save_file({key: value.astype(np.float32) for key, value in tensors.items()}, str(path))


def _hub_cache(root: Path, repo_id: str = "org/tiny") -> Path:
    """What huggingface_hub writes: blobs by hash, snapshots/<commit>/<file> linking to ../../blobs, refs/main."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    _tiny_safetensors(repo / "blobs" / "aa11")
    (repo / "blobs" / "bb22").write_text("{}")
    (repo / "snapshots" / COMMIT / "model.safetensors").symlink_to(Path("..", "..", "blobs", "aa11"))
    (repo / "snapshots" / COMMIT / "config.json").symlink_to(Path("..", "..", "blobs", "bb22"))
    (repo / "refs" / "main").write_text(COMMIT)
    return repo


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ww tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _names(results: ww_core.Results) -> list[tuple[str, str]]:
    return [(row["name"], row["status"]) for row in results.details]


def test_cache_repo_folder_resolves_refs_main_to_its_snapshot(tmp_path: Path, no_network: None) -> None:
    repo = _hub_cache(tmp_path / "hub")
    by_repo = ww_core.analyze(repo, min_evals=4)
    by_snapshot = ww_core.analyze(repo / "snapshots" / COMMIT, min_evals=4)
    assert _names(by_repo) == [("fc1", "success"), ("fc2", "success")]
    testing.assert_rows_close(by_repo.details, by_snapshot.details)


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"])
def test_repo_id_resolves_offline_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None, variable: str) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    value, hub = {  # the variable's value, and where huggingface_hub then keeps repos
        "HF_HUB_CACHE": (tmp_path / "hub", tmp_path / "hub"),
        "HF_HOME": (tmp_path / "home", tmp_path / "home" / "hub"),
        "XDG_CACHE_HOME": (tmp_path / "xdg", tmp_path / "xdg" / "huggingface" / "hub"),
    }[variable]
    _hub_cache(hub)
    monkeypatch.setenv(variable, str(value))
    monkeypatch.chdir(tmp_path)
    assert _names(ww_core.analyze("org/tiny", min_evals=4)) == [("fc1", "success"), ("fc2", "success")]
    out = tmp_path / "rows.json"
    assert main(["analyze", "org/tiny", "--min-evals", "4", "--json", str(out), "-q"]) == 0
    assert [row["name"] for row in json.loads(out.read_text())["details"]] == ["fc1", "fc2"]


def test_repo_id_at_a_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    repo = _hub_cache(tmp_path / "hub")
    (repo / "refs" / "main").write_text("f" * 40)  # main moved on to a snapshot that was never downloaded
    (repo / "refs" / "v1").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert _names(ww_core.analyze("org/tiny@v1", min_evals=4))[0] == ("fc1", "success")
    assert _names(ww_core.analyze(f"org/tiny@{COMMIT}", min_evals=4))[0] == ("fc1", "success")
    with pytest.raises(FileNotFoundError, match="not downloaded"):
        ww_core.analyze("org/tiny")


def test_a_repo_id_not_in_the_cache_is_a_clear_error_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as caught:
        ww_core.analyze("org/absent")
    message = str(caught.value)
    assert "org/absent" in message and str(tmp_path / "hub") in message and "never downloads" in message
    assert main(["analyze", "org/absent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "org/absent" in err[0]


def test_a_local_folder_named_like_a_repo_id_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org").mkdir()
    _tiny_safetensors(tmp_path / "org" / "tiny.safetensors")
    assert _names(ww_core.analyze("org/tiny.safetensors", min_evals=4))[0] == ("fc1", "success")


@pytest.mark.parametrize("lie", ["ref escapes", "link escapes", "no snapshots"])
def test_cache_folders_never_lead_outside_the_repo(tmp_path: Path, lie: str) -> None:
    repo = _hub_cache(tmp_path / "hub")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _tiny_safetensors(outside / "secret.safetensors")
    if lie == "ref escapes":
        (repo / "refs" / "main").write_text("../../../elsewhere")
    elif lie == "link escapes":
        link = repo / "snapshots" / COMMIT / "model.safetensors"
        link.unlink()
        link.symlink_to(outside / "secret.safetensors")
    else:
        (repo / "refs" / "main").unlink()
    with pytest.raises(ValueError if lie != "no snapshots" else FileNotFoundError) as caught:
        ww_core.analyze(repo)
    assert str(repo) in str(caught.value)
