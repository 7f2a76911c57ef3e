"""The Kubernetes kinds trustspace reads and writes, and the REST paths that reach them.

A fixed table instead of API discovery: the set is small and known, and skipping discovery
keeps a new connection to a remote edge cluster to one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustspace.api.constants import (
    DATASPACENODE_PLURAL,
    GROUP,
    MIRRORLINK_PLURAL,
    TRANSFERPOLICY_PLURAL,
    VERSION,
)


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name is not None else base


NAMESPACE = Kind("Namespace", "v1", "namespaces", namespaced=False)
SERVICE_ACCOUNT = Kind("ServiceAccount", "v1", "serviceaccounts")
SECRET = Kind("Secret", "v1", "secrets")
CONFIG_MAP = Kind("ConfigMap", "v1", "configmaps")
SERVICE = Kind("Service", "v1", "services")
EVENT = Kind("Event", "v1", "events")
POD = Kind("Pod", "v1", "pods")
PVC = Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims")
STATEFUL_SET = Kind("StatefulSet", "apps/v1", "statefulsets")
DEPLOYMENT = Kind("Deployment", "apps/v1", "deployments")
ROLE = Kind("Role", "rbac.authorization.k8s.io/v1", "roles")
ROLE_BINDING = Kind("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings")
LEASE = Kind("Lease", "coordination.k8s.io/v1", "leases")
NETWORK_POLICY = Kind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies")
DATASPACENODE = Kind("DataSpaceNode", f"{GROUP}/{VERSION}", DATASPACENODE_PLURAL)
TRANSFERPOLICY = Kind("TransferPolicy", f"{GROUP}/{VERSION}", TRANSFERPOLICY_PLURAL)
MIRRORLINK = Kind("MirrorLink", f"{GROUP}/{VERSION}", MIRRORLINK_PLURAL)

BY_KIND = {
    k.kind: k
    for k in (
        NAMESPACE,
        SERVICE_ACCOUNT,
        SECRET,
        CONFIG_MAP,
        SERVICE,
        EVENT,
        POD,
        PVC,
        STATEFUL_SET,
        DEPLOYMENT,
        ROLE,
        ROLE_BINDING,
        LEASE,
        NETWORK_POLICY,
        DATASPACENODE,
        TRANSFERPOLICY,
        MIRRORLINK,
    )
}


def kind_of(obj: dict[str, object]) -> Kind:
    try:
        return BY_KIND[str(obj["kind"])]
    except KeyError as exc:
        raise ValueError(f"trustspace does not manage objects of kind {obj.get('kind')!r}") from exc
