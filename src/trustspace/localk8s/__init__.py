"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests and the quickstart."""

from trustspace.localk8s.binaries import BinariesNotFound, find_bin_dir
from trustspace.localk8s.cluster import (
    KubectlError,
    LocalCluster,
    LocalFleet,
    default_root,
    local_cluster,
)
from trustspace.localk8s.processes import ControlPlaneError, PortInUse

__all__ = [
    "BinariesNotFound",
    "ControlPlaneError",
    "KubectlError",
    "LocalCluster",
    "LocalFleet",
    "PortInUse",
    "default_root",
    "find_bin_dir",
    "local_cluster",
]
