"""The data space as hack/kind-up.sh installed it, before any test disturbs it.

Each of the three failures the first real Pods showed has its test here: the operator
crash-looping on a uid without a passwd entry, an agent Pending for "Insufficient cpu", the edge
nodes Degraded by a 403 on namespaces. This module runs first (file order), so restart counts
are still those of the installation.
"""

from __future__ import annotations

from support.kind import AGENTS, EDGE_NS, RELEASE, SYSTEM_NS, Clusters

CLUSTERS = ("hub", "edge-1", "edge-2")


def _not_running(pod: dict) -> str | None:
    meta, status = pod["metadata"], pod.get("status") or {}
    name = f"{meta['namespace']}/{meta['name']}"
    if status.get("phase") != "Running":
        reasons = [c.get("message", "") for c in status.get("conditions", []) if c.get("message")]
        return f"{name} is {status.get('phase')} {reasons}"
    for c in status.get("containerStatuses", []):
        if not c.get("ready"):
            return f"{name}: container {c['name']} not ready {c.get('state')}"
        if c.get("restartCount", 0):
            last = (c.get("lastState") or {}).get("terminated") or {}
            return f"{name}: {c['name']} restarted {c['restartCount']}x ({last.get('reason')})"
    return None


def test_every_pod_in_every_cluster_runs_without_a_restart(clusters: Clusters) -> None:
    problems = []
    for cluster in CLUSTERS:
        pods = clusters.pods(cluster)
        assert pods, f"no Pods at all in {cluster}"
        problems += [f"{cluster}: {p}" for pod in pods if (p := _not_running(pod))]
    assert not problems, "\n".join(problems)


def test_the_operator_runs_as_its_uid_and_knows_who_it_is(clusters: Clusters) -> None:
    """Failure 1: kopf asked getpass.getuser() for its peering identity and the image had no
    passwd entry for uid 10001 (KeyError: 'getpwuid(): uid not found'). Both replicas run,
    never restarted, one of them leads."""
    pods = clusters.pods("hub", SYSTEM_NS, "app.kubernetes.io/component=operator")
    assert len(pods) == 2
    for pod in pods:
        assert _not_running(pod) is None, _not_running(pod)
        assert pod["spec"]["securityContext"]["runAsUser"] == 10001
        name = pod["metadata"]["name"]
        # The library call that crashed, in the running Pod, as its user.
        who = clusters.run(
            "hub", "-n", SYSTEM_NS, "exec", name, "--", "python3", "-c",
            "import getpass, os; print(os.getuid(), getpass.getuser())",
        )  # fmt: skip
        assert who.stdout.split() == ["10001", "trustspace"]
    lease = clusters.json("hub", "-n", SYSTEM_NS, "get", "lease", "trustspace-operator")
    holder = lease["spec"]["holderIdentity"]
    assert any(holder.startswith(p["metadata"]["name"] + "-") for p in pods), holder


def test_every_agent_fits_its_node(clusters: Clusters) -> None:
    """Failure 2: cn-nanning's agent asked for more CPU than a kind node has and stayed
    Pending. Every node's StatefulSet has all its replicas ready, and no Pod of the data space
    was ever refused by the scheduler."""
    for node, (cluster, ns) in AGENTS.items():
        sts = clusters.json(cluster, "-n", ns, "get", "statefulset", f"{node}-agent")
        want = sts["spec"]["replicas"]
        assert sts["status"].get("readyReplicas") == want, f"{node}: {sts['status']}"
        events = clusters.json(cluster, "-n", ns, "get", "events")["items"]
        # Not every FailedScheduling: a bind that loses a race with the PVC's update is
        # retried at once. A Pod that does not fit a node is what must never happen.
        refused = [
            e["message"]
            for e in events
            if e.get("reason") == "FailedScheduling" and "Insufficient" in e.get("message", "")
        ]
        assert not refused, f"{cluster}/{ns}: {refused}"


def test_edge_nodes_are_ready_with_the_edge_charts_identity(clusters: Clusters) -> None:
    """Failure 3: the edge chart's RBAC lacked `get namespaces`, so every remote node went
    Degraded with a 403. The identity may read exactly the namespaces it was given."""
    for node in AGENTS:
        conds = clusters.conditions(node)
        assert conds["Ready"]["status"] == "True", f"{node}: {conds}"
        degraded = conds.get("Degraded", {})
        assert degraded.get("status") != "True", f"{node}: {degraded}"
    who = f"system:serviceaccount:{SYSTEM_NS}:{RELEASE}-hub-operator"
    for cluster in ("edge-1", "edge-2"):

        def can(*what: str, cluster: str = cluster) -> str:
            out = clusters.run(cluster, "auth", "can-i", *what, f"--as={who}", check=False)
            return out.stdout.strip()

        assert can("get", f"namespace/{EDGE_NS}") == "yes"
        assert can("get", "namespace/kube-system") == "no"
        assert can("list", "namespaces") == "no"
        assert can("create", "namespaces") == "no"
        assert can("create", "networkpolicies", "-n", EDGE_NS) == "yes"
        assert can("get", "secrets", "-n", "kube-system") == "no"


PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: pss-probe}
spec:
  containers:
    - name: c
      image: registry.k8s.io/pause:3.10.1
      securityContext: {privileged: true}
"""


def test_restricted_pod_security_is_enforced_where_trustspace_runs(clusters: Clusters) -> None:
    places = [("hub", SYSTEM_NS), ("hub", clusters.namespace), ("edge-1", EDGE_NS)]
    places += [("edge-2", EDGE_NS), ("edge-1", clusters.namespace)]
    for cluster, ns in places:
        labels = clusters.json(cluster, "get", "namespace", ns)["metadata"].get("labels", {})
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (cluster, ns)
        refused = clusters.run(
            cluster, "-n", ns, "apply", "--dry-run=server", "-f", "-",
            input=PRIVILEGED_POD, check=False,
        )  # fmt: skip
        assert refused.returncode != 0, f"{cluster}/{ns} admitted a privileged Pod"
        assert 'violates PodSecurity "restricted' in refused.stderr, refused.stderr


def test_the_operator_has_exactly_the_charts_rbac(clusters: Clusters) -> None:
    """What the chart grants is all the operator's ServiceAccount is bound to, and it runs
    (every node Ready above) on nothing more."""
    sa_name = f"{RELEASE}-operator"
    sa = f"system:serviceaccount:{SYSTEM_NS}:{sa_name}"
    bound = []
    for kind in ("clusterrolebindings", "rolebindings"):
        for b in clusters.json("hub", "get", kind, "-A")["items"]:
            for s in b.get("subjects") or []:
                ours = (s.get("kind"), s.get("name"), s.get("namespace"))
                if ours == ("ServiceAccount", sa_name, SYSTEM_NS):
                    bound.append((kind, b["metadata"]["name"], b["roleRef"]["name"]))
    assert sorted(bound) == [
        ("clusterrolebindings", f"{RELEASE}-operator", f"{RELEASE}-operator"),
        ("rolebindings", f"{RELEASE}-leader", f"{RELEASE}-leader"),
    ]
    manifest = clusters.run("hub", "get", "clusterrole", f"{RELEASE}-operator", "-o", "yaml")
    assert "helm" in manifest.stdout.lower()  # the chart's own ClusterRole, not a hand-made one
    for verb, what in [("list", "pods"), ("create", "pods/exec"), ("escalate", "roles")]:
        out = clusters.run("hub", "auth", "can-i", verb, what, f"--as={sa}", check=False)
        assert out.stdout.strip() == "no", (verb, what)
