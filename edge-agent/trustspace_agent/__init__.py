"""The trustspace edge agent: gateway, durable audit log and shipper on every node."""
