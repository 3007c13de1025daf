"""The "pip install ww-x" advice comes from the adapters' own hints, plus a documented table of first-party packages."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ww_core.pipeline.plugins import UnknownSourceError, iter_layers, list_adapters, reload_plugins
from ww_core.platform.adapter_hints import FIRST_PARTY, Hints, advice, hints_of


class FakeTorchModule:
    pass


FakeTorchModule.__module__ = "torch.nn.modules.module"


def _adapter(package: str, status: str = "ok", reason: str = "") -> dict[str, object]:
    return {"name": package, "distribution": package, "status": status, "reason": reason, "package": package}


def test_advice_for_each_case(tmp_path: Path) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    shards = tmp_path / "ckpt"
    shards.mkdir()
    (shards / "pytorch_model-00001.bin").write_bytes(b"x")
    assert advice(onnx_file, []).startswith(" Install it with: pip install ww-onnx (from a ww checkout:")
    assert advice(shards, []).startswith(" Install it with: pip install ww-torch (")
    assert advice(FakeTorchModule(), []).startswith(" Install it with: pip install ww-torch (")
    assert advice(FakeTorchModule(), [_adapter("ww-torch")]) == " ww-torch is installed but did not recognize it."
    disabled = advice(FakeTorchModule(), [_adapter("ww-torch", "disabled", "named in WW_DISABLE_PLUGINS")])
    assert disabled == " ww-torch is installed but disabled (named in WW_DISABLE_PLUGINS)."
    assert advice(object(), []) == " No known adapter package handles it."


def test_an_installed_adapter_declares_its_own_hints(tmp_path: Path) -> None:
    twin = tmp_path / "m.twin"
    twin.write_bytes(b"x")
    declared = {**_adapter("ww-twin"), "suffixes": [".twin"], "modules": ["twinlib"]}
    assert advice(twin, []) == " No known adapter package handles it."
    assert advice(twin, [declared]) == " ww-twin is installed but did not recognize it."
    assert hints_of(declared) == Hints("ww-twin", (".twin",), ("twinlib",))


def test_first_party_table_matches_what_the_adapters_declare() -> None:
    table = {hints.package: hints for hints in FIRST_PARTY}
    installed = [row for row in list_adapters() if row["package"] in table and row["status"] == "ok"]
    for row in installed:
        assert hints_of(row) == table[str(row["package"])], f"adapter_hints.FIRST_PARTY disagrees with {row['package']}"


@pytest.fixture
def torch_disabled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WW_DISABLE_PLUGINS", "torch")
    reload_plugins()
    yield
    monkeypatch.delenv("WW_DISABLE_PLUGINS")
    reload_plugins()


def test_unknown_source_error_says_why(torch_disabled: None) -> None:
    if not any(row["distribution"] == "ww-torch" for row in list_adapters()):
        pytest.skip("ww-torch is not installed here")
    with pytest.raises(UnknownSourceError, match=r"ww-torch is installed but disabled"):
        iter_layers(FakeTorchModule())
