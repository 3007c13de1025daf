"""Where models live, as a newcomer names them: org-less Hugging Face ids, today's download hint, PEFT adapter folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ww_core
from ww_core.cli import main

from .test_model_folders import _hub_cache, _peft_folder


def test_an_org_less_repo_id_resolves_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bert-base-uncased`` is cached as ``models--bert-base-uncased`` (no org); it was not found."""
    _hub_cache(tmp_path, "tiny-bert")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    results = ww_core.analyze("tiny-bert")
    assert [row["name"] for row in results.analyzed] == ["fc1", "fc2"]
    assert ww_core.analyze("tiny-bert@main").analyzed == results.analyzed


def test_a_missing_file_is_not_mistaken_for_a_repo_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        ww_core.analyze("model.safetensors")
    assert "Hugging Face" not in str(error.value)


def test_the_download_hint_names_the_current_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """huggingface_hub no longer installs ``huggingface-cli``; its command is ``hf download``."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "org/absent"]) == 2
    err = capsys.readouterr().err
    assert "`hf download org/absent`" in err and "huggingface-cli" not in err


@pytest.mark.parametrize("cached", [True, False])
def test_a_peft_adapter_folder_is_recognized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cached: bool
) -> None:
    """Analyzed without --peft, an adapter folder gave rows of bare LoRA factors and no word about what it is."""
    folder = _peft_folder(tmp_path / "adapter")
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "org/base"}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    if cached:
        _hub_cache(tmp_path / "hub", "org/base")
    assert main(["analyze", str(folder), "--min-evals", "4", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("ww: warning:") == 1 and "adapter_config.json" in err and "--peft" in err and "org/base" in err
    assert ("org/base is in the Hugging Face cache" in err) == cached and ("org/base is not in the Hugging Face cache" in err) == (
        not cached
    )
    assert main(["analyze", str(folder), "--min-evals", "4", "-q", "--peft"]) == 0
    assert "--peft" not in capsys.readouterr().err  # asked for: nothing to point out


def _adapter_of(tmp_path: Path, base: str) -> Path:
    folder = _peft_folder(tmp_path / "adapter")
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base}))
    return folder


def _rows(out: Path) -> list[tuple[str, str]]:
    return [(row["name"], row["status"]) for row in json.loads(out.read_text())["details"]]


@pytest.mark.parametrize("where", ["cache", "--base"])
def test_peft_with_base_pairs_the_adapter_with_its_base_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """``--peft with_base`` on an adapter folder: the base model's layers (cached, or given with --base) beside each update B·A."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = _hub_cache(tmp_path / "hub", "org/base") if where == "cache" else _hub_cache(tmp_path / "elsewhere", "org/other")
    folder = _adapter_of(tmp_path, "org/base")
    given = ["--base", str(repo)] if where == "--base" else []
    out = tmp_path / "rows.json"
    assert main(["analyze", str(folder), "--peft", "with_base", "--min-evals", "4", "--json", str(out), "-q", *given]) == 0
    assert capsys.readouterr().err == ""
    rows = _rows(out)
    assert rows[:2] == [("fc1", "success"), ("fc2", "success")]  # the base model's layers first, analyzed as they are
    updates = [name for name, status in rows if name.endswith("lora_BA") and status == "success"]
    assert len(updates) == 2
    layer_ids = [row["layer_id"] for row in json.loads(out.read_text())["details"]]
    assert len(set(layer_ids)) == len(layer_ids)


def test_peft_with_base_says_when_the_base_model_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = _adapter_of(tmp_path, "org/absent")
    out = tmp_path / "rows.json"
    assert main(["analyze", str(folder), "--peft", "with_base", "--min-evals", "4", "--json", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("ww: warning:") == 1 and "org/absent" in err and "not in the Hugging Face cache" in err and "--base" in err
    assert not any(name in ("fc1", "fc2") for name, _ in _rows(out))


def test_an_adapter_named_by_its_repo_id_is_recognized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adapter in the Hugging Face cache, named by its id, is the same PEFT adapter folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--lora"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    _peft_folder(repo / "snapshots" / commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["analyze", "org/lora", "--min-evals", "4", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("ww: warning:") == 1 and err.startswith("ww: warning: org/lora is a PEFT adapter folder")
