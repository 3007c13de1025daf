"""Hostile ``.keras`` and legacy ``.h5`` files through ``ww analyze`` and ``ww describe``: exit 2, one line naming the file.

Nothing outside the model is read (HDF5 external storage, virtual datasets, external links are
refused) and a zip bomb never gets past the member size cap.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import h5py
import keras
import numpy as np
import pytest

import ww_core
from ww_core.testing import check_cli_error
from ww_keras import keras_file

SECRET = b"hunter2:x:0:0:Secret Account:/nonexistent:/bin/false\n" * 64


def _config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Sequential", "config": {"name": "net", "layers": layers}}


DENSE_CONFIG = _config([{"class_name": "Dense", "config": {"name": "fc", "units": 8}}])


def _legacy(path: Path, config: Any = DENSE_CONFIG, *, make_kernel: Callable[[h5py.Group], None] | None = None) -> Path:
    """A legacy ``model.save("x.h5")`` layout written with h5py alone: one Dense layer ``fc``."""
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = config if isinstance(config, str) else json.dumps(config)
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = [b"fc"]
        layer = weights.create_group("fc")
        layer.attrs["weight_names"] = [b"fc/kernel:0"]
        inner = layer.create_group("fc")
        if make_kernel is None:
            inner["kernel:0"] = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
        else:
            make_kernel(inner)
    return path


@pytest.fixture(scope="module")
def saved_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, name="fc")], name="net")
    path = tmp_path_factory.mktemp("keras") / "good.keras"
    model.save(path)
    return path


def _rewritten(source: Path, target: Path, **members: bytes) -> Path:
    """A copy of the ``.keras`` archive ``source`` with some members replaced."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            copy.writestr(info.filename, members.pop(info.filename, None) or original.read(info.filename))
        for name, data in members.items():
            copy.writestr(name, data)
    return target


def _secret(root: Path) -> Path:
    (root / "secret.txt").write_bytes(SECRET)
    return root / "secret.txt"


def external_storage(root: Path) -> Path:
    secret = _secret(root)
    outside = [(str(secret), 0, 512)]
    return _legacy(root / "external.h5", make_kernel=lambda g: g.create_dataset("kernel:0", (16, 8), "<f4", external=outside))


def virtual_dataset(root: Path) -> Path:
    with h5py.File(root / "other.h5", "w") as other:
        other["data"] = np.ones((16, 8), np.float32)

    def virtual(group: h5py.Group) -> None:
        layout = h5py.VirtualLayout((16, 8), "<f4")
        layout[:] = h5py.VirtualSource(str(root / "other.h5"), "data", shape=(16, 8))
        group.create_virtual_dataset("kernel:0", layout)

    return _legacy(root / "virtual.h5", make_kernel=virtual)


def external_link(root: Path) -> Path:
    with h5py.File(root / "other.h5", "w") as other:
        other["data"] = np.ones((16, 8), np.float32)

    def link(group: h5py.Group) -> None:
        group["kernel:0"] = h5py.ExternalLink(str(root / "other.h5"), "data")

    return _legacy(root / "linked.h5", make_kernel=link)


def missing_dataset(root: Path) -> Path:
    return _legacy(root / "missing.h5", make_kernel=lambda g: None)


def empty_h5(root: Path) -> Path:
    (root / "empty.h5").write_bytes(b"")
    return root / "empty.h5"


def truncated_h5(root: Path) -> Path:
    raw = _legacy(root / "whole.h5").read_bytes()
    (root / "cut.h5").write_bytes(raw[: len(raw) // 3])
    return root / "cut.h5"


def random_h5(root: Path) -> Path:
    (root / "noise.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    return root / "noise.h5"


def legacy_config_not_json(root: Path) -> Path:
    return _legacy(root / "notjson.h5", "{layers: nope")


def legacy_config_not_an_object(root: Path) -> Path:
    return _legacy(root / "list.h5", "[1, 2, 3]")


def legacy_config_deep(root: Path) -> Path:
    return _legacy(root / "deep.h5", "[" * 100_000 + "]" * 100_000)


HOSTILE_H5: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "HDF5 external storage": (external_storage, ("fc/fc/kernel:0", "outside")),
    "HDF5 virtual dataset": (virtual_dataset, ("fc/fc/kernel:0", "outside")),
    "HDF5 external link": (external_link, ("fc/fc/kernel:0", "outside")),
    "dataset listed but missing": (missing_dataset, ("fc/fc/kernel:0", "missing")),
    "empty .h5": (empty_h5, ("not an HDF5 file",)),
    "truncated .h5": (truncated_h5, ()),
    "random bytes named .h5": (random_h5, ("not an HDF5 file",)),
    "config not JSON": (legacy_config_not_json, ("model_config", "not valid JSON")),
    "config not an object": (legacy_config_not_an_object, ("model_config", "not a JSON object")),
    "config nested 100000 deep": (legacy_config_deep, ("model_config", "nested too deeply")),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_H5))
def test_hostile_h5_is_one_error_line_naming_it(tmp_path: Path, case: str) -> None:
    build, needles = HOSTILE_H5[case]
    for line in check_cli_error(build(tmp_path), *needles):
        assert "hunter2" not in line


KERAS_CONFIGS: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "config not JSON": (b"{layers: nope", ("config.json", "not valid JSON")),
    "config not an object": (b"[1, 2, 3]", ("config.json", "not a JSON object")),
    "config a number": (b"1", ("config.json", "not a JSON object")),
    "config nested 100000 deep": (b'{"config": ' * 100_000 + b"1" + b"}" * 100_000, ("config.json", "nested too deeply")),
}


@pytest.mark.parametrize("case", sorted(KERAS_CONFIGS))
def test_hostile_keras_config_is_one_error_line_naming_it(saved_keras: Path, tmp_path: Path, case: str) -> None:
    config, needles = KERAS_CONFIGS[case]
    check_cli_error(_rewritten(saved_keras, tmp_path / "bad.keras", **{"config.json": config}), *needles)


def test_keras_weights_with_external_storage_are_refused(saved_keras: Path, tmp_path: Path) -> None:
    secret = _secret(tmp_path)
    with zipfile.ZipFile(saved_keras) as archive:
        weights = io.BytesIO(archive.read(keras_file.WEIGHTS_MEMBER))
    with h5py.File(weights, "r+") as handle:
        found: list[str] = []
        handle.visit(lambda name: found.append(name) if name.endswith("vars/0") else None)
        shape = handle[found[0]].shape
        del handle[found[0]]
        handle.create_dataset(found[0], shape, "<f4", external=[(str(secret), 0, 4 * int(np.prod(shape)))])
    path = _rewritten(saved_keras, tmp_path / "external.keras", **{keras_file.WEIGHTS_MEMBER: weights.getvalue()})
    for line in check_cli_error(path, "outside"):
        assert "hunter2" not in line


def test_keras_weight_groups_in_a_cycle_are_one_error(saved_keras: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(saved_keras) as archive:
        weights = io.BytesIO(archive.read(keras_file.WEIGHTS_MEMBER))
    with h5py.File(weights, "r+") as handle:
        handle["layers"]["loop"] = handle["layers"]  # a hard link to its own parent
    path = _rewritten(saved_keras, tmp_path / "cycle.keras", **{keras_file.WEIGHTS_MEMBER: weights.getvalue()})
    check_cli_error(path, "nested too deeply")


def test_keras_zip_bomb_stops_at_the_cap(saved_keras: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config.json that inflates past the cap is refused after reading at most the cap (a 3 MB file took 6.4 GB)."""
    monkeypatch.setattr(keras_file, "MAX_CONFIG_BYTES", 1 << 20)
    bomb = b'{"class_name": "Sequential", "config": {"name": "' + b" " * (4 << 20) + b'"}}'
    path = _rewritten(saved_keras, tmp_path / "bomb.keras", **{"config.json": bomb})
    assert path.stat().st_size < 100_000
    check_cli_error(path, "config.json", "1 MiB cap")


def test_a_good_file_still_reads(saved_keras: Path, tmp_path: Path) -> None:
    assert [row["name"] for row in ww_core.analyze(saved_keras).details] == ["fc"]
    assert [row["name"] for row in ww_core.analyze(_legacy(tmp_path / "fine.h5")).details] == ["fc"]


def test_keras_weights_member_zip_bomb_is_refused(saved_keras: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ww_core.platform import untrusted

    monkeypatch.setattr(untrusted, "MAX_INFLATED_BYTES", 1 << 20)
    with zipfile.ZipFile(saved_keras) as archive:
        weights = io.BytesIO(archive.read(keras_file.WEIGHTS_MEMBER))
    with h5py.File(weights, "r+") as handle:
        handle["padding"] = np.zeros((1024, 512), np.float32)  # 2 MiB that deflate to almost nothing
    path = _rewritten(saved_keras, tmp_path / "bomb.keras", **{keras_file.WEIGHTS_MEMBER: weights.getvalue()})
    assert path.stat().st_size < 100_000
    check_cli_error(path, "model.weights.h5", "zip bomb")
