from __future__ import annotations

from pathlib import Path

import pytest

from trustspace.localk8s import BinariesNotFound, find_bin_dir


def _fake_bin(directory: Path, names: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)


def test_env_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bin(tmp_path, ["kube-apiserver", "etcd", "kubectl"])
    monkeypatch.setenv("TRUSTSPACE_K8S_BIN", str(tmp_path))
    assert find_bin_dir(build=False) == tmp_path


def test_incomplete_env_directory_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_bin(tmp_path, ["kube-apiserver"])
    monkeypatch.delenv("TRUSTSPACE_K8S_BIN", raising=False)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(BinariesNotFound, match=r"lacks etcd, kubectl"):
        find_bin_dir(build=False)


def test_no_source_says_what_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSPACE_K8S_BIN", raising=False)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(BinariesNotFound, match=r"hack/k8s-bin\.sh"):
        find_bin_dir(build=False)
