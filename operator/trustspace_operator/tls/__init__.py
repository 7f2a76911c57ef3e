"""TLS serving pairs the operator issues: the data space's CA (ca.py), the gateways'
(gateway.py) and the hub collector's (collector.py)."""
