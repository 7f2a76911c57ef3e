"""The space controller: what is built for a data space as a whole (trust and policy
bundles, their delivery, gateway extras, the collector's pair, TransferPolicy status,
MirrorLink conditions, the gateway peer directory). See controller.py."""

from trustspace_operator.space.node_feed import NodeFeed
from trustspace_operator.space.space_controller import SpaceController

__all__ = ["NodeFeed", "SpaceController"]
