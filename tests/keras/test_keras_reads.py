"""docs/bad-input.md "Reads", for ww-keras (``.keras`` archives and legacy ``.h5`` files), written with h5py alone.

Every hostile dataset is tried in both containers. Each case runs ``ww analyze`` in a child process with bounded
memory and time (tests/bounded_cli.py): one error line naming the file, or the row the layer should get.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest

from tests.bounded_cli import analyzed_rows, check_refused

Make = Callable[[h5py.Group, str], None]
CONFIG = {"class_name": "Sequential", "config": {"name": "net", "layers": [{"class_name": "Dense", "config": {"name": "fc", "units": 8}}]}}


def good_kernel(group: h5py.Group, name: str) -> None:
    group[name] = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)


def keras_archive(path: Path, make: Make, layer_name: Any = "fc", extra: Make | None = None) -> Path:
    """A ``.keras`` archive of one Dense layer ``fc`` whose kernel (``vars/0``) ``make`` writes."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        variables = handle.create_group("layers").create_group("fc").create_group("vars")
        variables.attrs["name"] = layer_name
        make(variables, "0")
        if extra is not None:
            extra(variables, "abc")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(CONFIG))
        archive.writestr("model.weights.h5", buffer.getvalue())
    return path


def legacy_h5(path: Path, make: Make, layer_name: Any = b"fc") -> Path:
    """A legacy ``model.save("x.h5")`` file of one Dense layer ``fc`` whose kernel ``make`` writes."""
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(CONFIG)
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = [layer_name]
        layer = weights.create_group("fc")
        layer.attrs["weight_names"] = [b"fc/kernel:0"]
        make(layer.create_group("fc"), "kernel:0")
    return path


def _both(make: Make) -> dict[str, Callable[[Path], Path]]:
    return {".keras": lambda root: keras_archive(root / "model.keras", make), ".h5": lambda root: legacy_h5(root / "model.h5", make)}


# Claims larger than the file


def never_written(group: h5py.Group, name: str) -> None:
    """15000 x 15000 float32 (0.9 GB) that HDF5 would give as its fill value: no byte of it is in the file."""
    group.create_dataset(name, (15000, 15000), "<f4")


def partly_written(group: h5py.Group, name: str) -> None:
    """Chunked, uncompressed, one chunk of 64 written: the rest would be the fill value."""
    dataset = group.create_dataset(name, (8192, 8192), "<f4", chunks=(1024, 1024))
    dataset[:1024, :1024] = 1.0


def gzip_bomb(group: h5py.Group, name: str) -> None:
    """256 MiB of zeros in gzip chunks a few hundred kB long."""
    dataset = group.create_dataset(name, (8192, 8192), "<f4", chunks=(1024, 8192), compression="gzip", compression_opts=9)
    block = np.zeros((1024, 8192), np.float32)
    for start in range(0, 8192, 1024):
        dataset[start : start + 1024] = block


CLAIMS: dict[str, tuple[Make, tuple[str, ...]]] = {
    "a dataset never written (fill value)": (never_written, ("'layers/fc/vars/0'|'model_weights/fc/fc/kernel:0'", "present")),
    "a chunked dataset partly written": (partly_written, ("'layers/fc/vars/0'|'model_weights/fc/fc/kernel:0'", "present")),
    "gzip chunks inflating past the cap": (gzip_bomb, ("'layers/fc/vars/0'|'model_weights/fc/fc/kernel:0'", "MiB cap")),
}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_claims_beyond_the_bytes_in_the_file_are_refused(tmp_path: Path, case: str, suffix: str) -> None:
    make, (dataset, *needles) = CLAIMS[case]
    line = check_refused(_both(make)[suffix](tmp_path), *needles)
    assert any(name in line for name in dataset.split("|")), line


# Special files


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_fifo_is_refused_never_read(tmp_path: Path, suffix: str) -> None:
    os.mkfifo(tmp_path / f"model{suffix}")
    check_refused(tmp_path / f"model{suffix}", "not a regular file", "FIFO")


# Layers that vanish: every listed weight gets a row


def zero_dimensional(group: h5py.Group, name: str) -> None:
    group.create_dataset(name, data=np.float32(3.0))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_dense_kernel_of_no_dimensions_gets_a_skipped_row(tmp_path: Path, suffix: str) -> None:
    rows = analyzed_rows(_both(zero_dimensional)[suffix](tmp_path), tmp_path / "rows.json", command="describe")
    assert [(row["name"], row["status"]) for row in rows] == [("fc", "skipped")]
    assert "rank-0" in str(rows[0]["error"]), rows


# Messages that name the file


MESSAGES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "a .keras variable named 'abc'": (lambda root: keras_archive(root / "abc.keras", good_kernel, extra=good_kernel), ("'abc'",)),
    "a .keras layer name not UTF-8": (lambda root: keras_archive(root / "utf.keras", good_kernel, layer_name=b"fc\xff\xfe"), ("UTF-8",)),
    "an .h5 layer name not UTF-8": (lambda root: legacy_h5(root / "utf.h5", good_kernel, layer_name=b"fc\xff\xfe"), ("UTF-8",)),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_malformed_names_are_one_error_naming_the_file(tmp_path: Path, case: str) -> None:
    build, needles = MESSAGES[case]
    check_refused(build(tmp_path), *needles)
