"""The hub's audit collector: verifies signed batches from edge agents, keeps exactly one copy
of every event, and signs checkpoints over one global Merkle log of events and documents."""
