"""The trustspace operator: reconciles DataSpaceNode, TransferPolicy and MirrorLink (kopf)."""
