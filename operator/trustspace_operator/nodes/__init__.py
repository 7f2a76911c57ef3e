"""The node controller: makes each DataSpaceNode's cluster match its spec, moves its key
lifecycle forward one safe step at a time, and writes the operator's part of its status.

Its entry points are watch events of the nodes (`NodeController.node_changed`, from
handlers.py) and of their objects (`NodeController.enqueue`, from watch.py), the periodic
`NodeController.sweep`, the space controller's calls (`NodeController.bundle_published`,
`NodeController.views_changed`) and kopf's delete handler (`NodeController.cleanup`); all
but the last end in a reconcile queued on `CoalescingQueue` (queue.py).
"""

from trustspace_operator.nodes.node_controller import NodeController, Result, now_utc
from trustspace_operator.nodes.space_hook import NoSpace, SpaceHook

__all__ = ["NoSpace", "NodeController", "Result", "SpaceHook", "now_utc"]
