"""The JSON client against a real API server: verbs, errors, paging, server-side apply."""

from __future__ import annotations

import pytest

from trustspace.kube import ApiError, Conflict, Kube, NotFound, Unreachable
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster


@pytest.fixture
def kube(cluster: LocalCluster) -> Kube:
    return Kube.from_kubeconfig(str(cluster.kubeconfig))


def _cm(ns: str, name: str, **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "t"}},
        "data": data,
    }


def test_create_get_replace_conflict_delete(kube: Kube, namespace: str) -> None:
    created = kube.create(_cm(namespace, "a", x="1"))
    assert kube.get(k.CONFIG_MAP, "a", namespace)["data"] == {"x": "1"}  # type: ignore[index]
    created["data"] = {"x": "2"}
    kube.replace(created)
    created["data"] = {"x": "3"}  # stale resourceVersion now
    with pytest.raises(Conflict):
        kube.replace(created)
    assert kube.delete(k.CONFIG_MAP, "a", namespace) is True
    assert kube.delete(k.CONFIG_MAP, "a", namespace) is False
    assert kube.get(k.CONFIG_MAP, "a", namespace) is None
    with pytest.raises(NotFound):
        kube.patch(k.CONFIG_MAP, "a", {"data": {}}, namespace)


def test_apply_owns_its_fields_and_keeps_others(kube: Kube, namespace: str) -> None:
    kube.apply(_cm(namespace, "b", mine="1"))
    kube.patch(k.CONFIG_MAP, "b", {"data": {"theirs": "2"}}, namespace)
    applied = kube.apply(_cm(namespace, "b", mine="3"))
    assert applied["data"] == {"mine": "3", "theirs": "2"}
    managers = {m["manager"] for m in applied["metadata"]["managedFields"]}
    assert "trustspace-operator" in managers


def test_an_apply_after_a_create_removes_what_it_leaves_out(
    cluster: LocalCluster, kube: Kube, namespace: str
) -> None:
    created = kube.create(_cm(namespace, "c", mine="1", dropped="2"))
    other = Kube.from_kubeconfig(str(cluster.kubeconfig), field_manager="someone-else")
    other.patch(k.CONFIG_MAP, "c", {"data": {"theirs": "3"}}, namespace)
    kube.claim_for_apply(created)  # read before the other write: changes nothing
    live = kube.get(k.CONFIG_MAP, "c", namespace)
    assert live is not None
    assert kube.claim_for_apply(live) is True
    claimed = kube.get(k.CONFIG_MAP, "c", namespace)
    assert claimed is not None and kube.claim_for_apply(claimed) is False
    applied = kube.apply(_cm(namespace, "c", mine="1"))
    # Without the claim, "dropped" would stay: a create's fields are not the apply's.
    assert applied["data"] == {"mine": "1", "theirs": "3"}
    ops = {(m["manager"], m["operation"]) for m in applied["metadata"]["managedFields"]}
    assert ("trustspace-operator", "Update") not in ops
    assert ("someone-else", "Update") in ops


def test_list_follows_continue_tokens(kube: Kube, namespace: str) -> None:
    for i in range(7):
        kube.create(_cm(namespace, f"p{i}"))
    names = [
        o["metadata"]["name"]
        for o in kube.list(k.CONFIG_MAP, namespace, labels={"app": "t"}, limit=2)
    ]
    assert sorted(names) == [f"p{i}" for i in range(7)]


def test_invalid_object_names_the_field(kube: Kube, namespace: str) -> None:
    bad = _cm(namespace, "Not_A_Name")
    with pytest.raises(ApiError, match=r"metadata\.name"):
        kube.create(bad)


def test_dead_server_is_unreachable_fast(cluster: LocalCluster) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dead",
                "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True},
            }
        ],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
        "current-context": "dead",
    }
    kube = Kube.from_kubeconfig_dict(doc, timeout=(1.0, 2.0))
    with pytest.raises(Unreachable):
        kube.get(k.NAMESPACE, "default")
