"""The Helm chart ships exactly the CRDs generated from the models."""

from __future__ import annotations

from pathlib import Path

from trustspace.api.crdgen import RESOURCES, crd_filename, generate

ROOT = Path(__file__).resolve().parents[3]


def test_chart_crds_are_the_generated_ones() -> None:
    chart_crds = ROOT / "charts" / "trustspace" / "crds"
    files = generate(chart_crds, ROOT / "docs" / "api.md")
    for cls in RESOURCES:
        path = chart_crds / crd_filename(cls)
        assert path.read_text(encoding="utf-8") == files[path], f"{path} drifted: run make crds"
    assert sorted(p.name for p in chart_crds.glob("*.yaml")) == sorted(
        crd_filename(cls) for cls in RESOURCES
    )
