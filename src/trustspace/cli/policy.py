"""`trustspace policy`: compile policies into a bundle, explain decisions, show profiles."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from trustspace.api.common import parse_quantity
from trustspace.api.constants import DATASPACENODE_KIND, TRANSFERPOLICY_KIND, Classification
from trustspace.api.constants import DataCategory as Category
from trustspace.policy.compiler import CompileError, compile_bundle
from trustspace.policy.decision import TransferRequest
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.explain import explain as explain_request
from trustspace.policy.profile_loader import (
    ProfileError,
    ProfileSet,
    diff_profiles,
    load_profiles,
)

Obj = dict[str, Any]


def read_manifests(paths: Iterable[str]) -> tuple[list[Obj], list[Obj]]:
    """TransferPolicies and DataSpaceNodes from YAML files or directories of them."""
    policies: list[Obj] = []
    nodes: list[Obj] = []
    for raw in paths:
        path = Path(raw)
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except (OSError, yaml.YAMLError) as exc:
                raise click.ClickException(f"{file}: {exc}") from exc
            for doc in docs:
                if not isinstance(doc, dict):
                    continue
                if doc.get("kind") == TRANSFERPOLICY_KIND:
                    policies.append(doc)
                elif doc.get("kind") == DATASPACENODE_KIND:
                    nodes.append(doc)
    return policies, nodes


def read_live(kubeconfig: str | None, namespace: str) -> tuple[list[Obj], list[Obj]]:
    from trustspace.kube import Kube
    from trustspace.kube.kinds import DATASPACENODE, TRANSFERPOLICY

    kube = Kube.from_kubeconfig(kubeconfig)
    try:
        policies = list(kube.list(TRANSFERPOLICY, namespace))
        nodes = list(kube.list(DATASPACENODE, namespace))
    finally:
        kube.close()
    return policies, nodes


def _profiles(overrides: Sequence[str], builtin: bool) -> ProfileSet:
    try:
        return load_profiles(builtin=builtin, overrides=list(overrides))
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from exc


def _inputs(
    files: Sequence[str], kubeconfig: str | None, namespace: str | None
) -> tuple[list[Obj], list[Obj], str | None]:
    if files:
        policies, nodes = read_manifests(files)
        return policies, nodes, namespace
    if kubeconfig is None and namespace is None:
        raise click.UsageError("give manifests with -f, or --kubeconfig/--namespace to read live")
    ns = namespace or "default"
    policies, nodes = read_live(kubeconfig, ns)
    return policies, nodes, ns


_source_options = [
    click.option(
        "-f",
        "--filename",
        "files",
        multiple=True,
        type=click.Path(exists=True),
        help="Manifest file or directory (repeatable); reads the cluster when absent.",
    ),
    click.option("--kubeconfig", type=click.Path(exists=True), help="Read live objects."),
    click.option("-n", "--namespace", help="Namespace of the live objects (default: default)."),
    click.option(
        "--profiles",
        "profile_overrides",
        multiple=True,
        type=click.Path(exists=True),
        help="Profile override file (repeatable), merged over the built-in profiles.",
    ),
    click.option("--no-builtin-profiles", is_flag=True, help="Use only the --profiles files."),
]


def source_options(f: Any) -> Any:
    for option in reversed(_source_options):
        f = option(f)
    return f


@click.group()
def policy() -> None:
    """Transfer policies: compile the bundle, explain decisions (issue 7)."""


@policy.command()
@click.option("--from", "source", required=True, help="Source DataSpaceNode.")
@click.option("--to", "destination", required=True, help="Destination DataSpaceNode.")
@click.option(
    "--class",
    "classification",
    required=True,
    type=click.Choice([c.value for c in Classification]),
    help="Classification (R1).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    type=click.Choice([c.value for c in Category]),
    help="Data category (repeatable).",
)
@click.option("--purpose", help="Purpose of the transfer (recorded, not matched).")
@click.option("--payload-size", help="Payload size, e.g. 10Mi.")
@click.option(
    "--certification",
    "certifications",
    multiple=True,
    help="Certification the recipient holds (repeatable).",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@source_options
def explain(
    source: str,
    destination: str,
    classification: str,
    categories: tuple[str, ...],
    purpose: str | None,
    payload_size: str | None,
    certifications: tuple[str, ...],
    output: str,
    files: tuple[str, ...],
    kubeconfig: str | None,
    namespace: str | None,
    profile_overrides: tuple[str, ...],
    no_builtin_profiles: bool,
) -> None:
    """Print the decision for a transfer, the rules behind it and what would change it."""
    policies, nodes, ns = _inputs(files, kubeconfig, namespace)
    profiles = _profiles(profile_overrides, not no_builtin_profiles)
    try:
        result = compile_bundle(policies, nodes, profiles, version=1, namespace=ns)
    except CompileError as exc:
        raise click.ClickException(str(exc)) from exc
    size = int(parse_quantity(payload_size)) if payload_size else None
    request = TransferRequest.of(
        source,
        destination,
        classification,
        categories,
        purpose=purpose,
        payload_size=size,
        recipient_certifications=certifications,
    )
    explanation = explain_request(PolicyEngine(result.bundle), request)
    if output == "json":
        click.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(explanation.render())


@policy.command(name="compile")
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the canonical bundle here.")
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False),
    help="SM2 private key (PEM) to sign the bundle; writes a signed envelope to --out.",
)
@source_options
def compile_cmd(
    version: int,
    out: str | None,
    sign_key: str | None,
    files: tuple[str, ...],
    kubeconfig: str | None,
    namespace: str | None,
    profile_overrides: tuple[str, ...],
    no_builtin_profiles: bool,
) -> None:
    """Compile policies, nodes and profiles into a bundle; print hash and per-policy results."""
    policies, nodes, ns = _inputs(files, kubeconfig, namespace)
    profiles = _profiles(profile_overrides, not no_builtin_profiles)
    try:
        result = compile_bundle(policies, nodes, profiles, version=version, namespace=ns)
    except CompileError as exc:
        raise click.ClickException(str(exc)) from exc
    bundle = result.bundle
    click.echo(f"bundle version {bundle.version} sm3 {bundle.hash} ({len(bundle.canonical)} bytes)")
    for name, report in sorted(result.reports.items()):
        click.echo(f"  {name}: {report.reason.value}: {report.message}")
        for conflict in report.conflicts:
            click.echo(
                f"    conflict {conflict.rule} vs {conflict.policy}/{conflict.other_rule}: "
                f"{conflict.message}"
            )
    for name, error in sorted(result.node_errors.items()):
        click.echo(f"  node {name} left out: {error}", err=True)
    if out:
        if sign_key:
            from trustspace.crypto import SM2PrivateKey

            key = SM2PrivateKey.from_pem(Path(sign_key).read_bytes())
            Path(out).write_bytes(bundle.signed_envelope(key))
        else:
            Path(out).write_bytes(bundle.to_bytes())
    if any(not r.accepted for r in result.reports.values()):
        sys.exit(1)


@policy.command()
@click.option(
    "--profiles",
    "profile_overrides",
    multiple=True,
    type=click.Path(exists=True),
    help="Override file (repeatable).",
)
@click.option(
    "--against",
    "against",
    multiple=True,
    type=click.Path(exists=True),
    help="Show what the --profiles overrides change relative to these overrides (R4).",
)
def profiles(profile_overrides: tuple[str, ...], against: tuple[str, ...]) -> None:
    """List the jurisdiction profiles in force, or the changes between two sets (R4)."""
    current = _profiles(profile_overrides, True)
    if against:
        for line in diff_profiles(_profiles(against, True), current) or ["no change"]:
            click.echo(line)
        return
    click.echo(f"profiles sm3 {current.hash}")
    for profile in current:
        law = profile.data_protection_law.status.value
        click.echo(f"{profile.jurisdiction.value} {profile.name} (data-protection law: {law})")
        for rule in profile.rules:
            state = " [disabled]" if rule.disabled else ""
            prov = " [provisional]" if rule.provisional else ""
            click.echo(f"  rule {rule.id}: {rule.effect.value}{prov}{state} ({rule.source})")
        for entry in profile.risk_list:
            click.echo(f"  risk {entry.id} ({entry.source})")
