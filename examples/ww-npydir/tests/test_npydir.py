"""The example adapter checked with the conformance kit, as a third party would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ww_core
import ww_npydir
from ww_core import testing


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "b_conv.npy", rng.standard_normal((16, 8, 3, 3)).astype(np.float32))
    np.save(tmp_path / "a_embed.npy", rng.standard_normal((50, 8)))
    np.save(tmp_path / "c_fc.npy", rng.standard_normal((10, 16)).astype(np.float32))
    np.save(tmp_path / "d_bias.npy", np.zeros(10, np.float32))
    (tmp_path / "order.txt").write_text("a_embed\nb_conv\nc_fc\nd_bias\n")
    return tmp_path


def test_layers_conform(folder: Path) -> None:
    layers = testing.check_layers(ww_npydir.ww_layers(folder, {}))
    assert [(x.name, x.kind, x.shape) for x in layers] == [
        ("a_embed", "embedding", (50, 8)),
        ("b_conv", "conv2d", (16, 8, 3, 3)),
        ("c_fc", "dense", (10, 16)),
    ]


def test_order_file_wins_over_names(folder: Path) -> None:
    (folder / "order.txt").write_text("c_fc\na_embed\nb_conv\n")
    assert [x.name for x in ww_npydir.ww_layers(folder, {})] == ["c_fc", "a_embed", "b_conv"]
    (folder / "order.txt").unlink()
    assert [x.name for x in ww_npydir.ww_layers(folder, {})] == ["a_embed", "b_conv", "c_fc"]


def test_lazy(folder: Path) -> None:
    def rewrite() -> None:
        for path in folder.glob("*.npy"):
            np.save(path, np.load(path) * 2 + 1)

    testing.check_lazy(lambda: ww_npydir.ww_layers(folder, {}), rewrite)


def test_clear_errors_and_declines(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (folder / "order.txt").write_text("a_embed\nghost\n")
    testing.check_clear_error(lambda: ww_npydir.ww_layers(folder, {}), "order.txt", "ghost")
    (folder / "order.txt").unlink()
    (folder / "broken.npy").write_bytes(b"garbage")
    testing.check_clear_error(lambda: ww_npydir.ww_layers(folder, {}), "broken.npy", "not a .npy file")
    testing.check_declines(ww_npydir.ww_layers)
    testing.check_adapter_info(ww_npydir.ww_adapter_info())


def test_found_through_the_entry_point_and_analyzed(folder: Path) -> None:
    adapters = {adapter["name"]: adapter for adapter in ww_core.list_adapters()}
    assert adapters["npydir"]["package"] == "ww-npydir"
    rows = ww_core.analyze(folder).details
    expected = ww_core.analyze({p.stem: np.load(p) for p in sorted(folder.glob("*.npy")) if np.load(p).ndim > 1}).details
    testing.assert_rows_close(rows, expected)
    assert [row["name"] for row in rows] == ["a_embed", "b_conv", "c_fc"]


def test_kit_checks_for_common_mistakes(tmp_path: Path) -> None:
    testing.check_plugin(ww_npydir)
    testing.check_declines_quietly("ww_npydir")
    big = np.random.default_rng(1).standard_normal((1024, 256))
    np.save(tmp_path / "big.npy", big)
    testing.check_lists_without_reading(lambda: ww_npydir.ww_layers(tmp_path, {}), big.nbytes)
