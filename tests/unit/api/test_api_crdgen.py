"""`crds/` and `docs/api.md` are exactly what the models generate, and `--check` says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trustspace.api import RESOURCES
from trustspace.api.crdgen import generate, main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
DOCS = REPO / "docs" / "api.md"


def test_committed_files_match_models() -> None:
    for path, content in generate(CRDS, DOCS).items():
        assert path.exists(), f"{path} missing: run python -m trustspace.api.crdgen"
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.relative_to(REPO)} is stale: run python -m trustspace.api.crdgen"
        )


def test_one_crd_per_kind_and_nothing_else() -> None:
    generated = {p.name for p in CRDS.glob("trustspace.io_*.yaml")}
    assert len(generated) == len(RESOURCES) == 3
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in CRDS.glob("*.yaml")}
    assert kinds == {"DataSpaceNode", "TransferPolicy", "MirrorLink"}


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "crds", tmp_path / "api.md")
    second = generate(tmp_path / "crds", tmp_path / "api.md")
    assert first == second


def _copy_repo_outputs(tmp_path: Path) -> tuple[Path, Path]:
    crds, docs = tmp_path / "crds", tmp_path / "docs" / "api.md"
    shutil.copytree(CRDS, crds)
    docs.parent.mkdir()
    shutil.copy(DOCS, docs)
    return crds, docs


def _check(crds: Path, docs: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--check", "--crds-dir", str(crds), "--docs", str(docs)])
    return result.exit_code, result.output


def test_check_passes_on_fresh_output(tmp_path: Path) -> None:
    crds, docs = _copy_repo_outputs(tmp_path)
    code, output = _check(crds, docs)
    assert code == 0, output


def test_check_fails_on_an_edited_crd(tmp_path: Path) -> None:
    crds, docs = _copy_repo_outputs(tmp_path)
    target = crds / "trustspace.io_dataspacenodes.yaml"
    original = target.read_text()
    assert "maxItems: 8" in original
    target.write_text(original.replace("maxItems: 8", "maxItems: 9"))
    code, output = _check(crds, docs)
    assert code == 1
    assert "maxItems: 9" in output
    assert "out of date" in output


def test_check_fails_on_edited_docs_and_stale_files(tmp_path: Path) -> None:
    crds, docs = _copy_repo_outputs(tmp_path)
    docs.write_text(docs.read_text() + "\nhand-written addition\n")
    (crds / "trustspace.io_oldkinds.yaml").write_text("kind: CustomResourceDefinition\n")
    code, output = _check(crds, docs)
    assert code == 1
    assert "hand-written addition" in output
    assert "trustspace.io_oldkinds.yaml: not generated" in output


def test_write_mode_repairs_drift(tmp_path: Path) -> None:
    crds, docs = _copy_repo_outputs(tmp_path)
    (crds / "trustspace.io_mirrorlinks.yaml").unlink()
    docs.write_text("stale\n")
    stale = crds / "trustspace.io_oldkinds.yaml"
    stale.write_text("kind: CustomResourceDefinition\n")
    result = CliRunner().invoke(main, ["--crds-dir", str(crds), "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert _check(crds, docs) == (0, "4 generated files up to date\n")


def test_docs_mention_every_field_of_every_crd() -> None:
    # The reference is rendered from the CRDs; every property must appear in it.
    text = DOCS.read_text()

    def walk(node: dict[str, object], path: str) -> list[str]:
        found: list[str] = []
        props = node.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                found.append(f"{path}.{name}" if path else name)
                found += walk(sub, f"{path}.{name}" if path else name)
        items = node.get("items")
        if isinstance(items, dict):
            found += walk(items, path + "[]")
        return found

    for cls in RESOURCES:
        crd = yaml.safe_load((CRDS / f"trustspace.io_{cls.crd.plural}.yaml").read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for part in ("spec", "status"):
            for path in walk(schema["properties"][part], part):
                parent, _, leaf = path.rpartition(".")
                assert f"### `{cls.crd.kind}.{parent}`" in text, parent
                assert f"| `{leaf}` |" in text, path
