"""trustspace: the code the operator and the edge agent share.

API models, SM2/SM3/SM4 cryptography, the audit record format, and the local Kubernetes
control plane used by tests and the quickstart.
"""

__version__ = "0.1.0"
