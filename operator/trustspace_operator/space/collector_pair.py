"""The hub collector's TLS serving pair in each data space (tls/collector.py issues it)."""

from __future__ import annotations

import logging

from trustspace import clock
from trustspace.kube import ApiError, Kube, Unreachable
from trustspace_operator.tls import collector as collector_tls
from trustspace_operator.tls.ca import SpaceCAs

log = logging.getLogger(__name__)


class CollectorPair:
    """With a Secret name, the collector's serving pair is issued into each data space for
    `url`; its CA then is the collector CA agents get."""

    def __init__(self, hub: Kube, cas: SpaceCAs, secret: str | None, url: str | None) -> None:
        self.hub = hub
        self.cas = cas
        self.secret = secret
        self.url = url

    def ensure(self, space: str) -> str | None:
        """Keep the collector's serving pair issued in `space`; returns its CA certificate."""
        if not (self.secret and self.url):
            return None
        try:
            ca, why = collector_tls.ensure(
                self.hub, self.cas, self.secret, space, self.url, clock.now()
            )
        except (ApiError, Unreachable) as exc:  # the next pass retries; bundles go out anyway
            log.warning("collector TLS pair in %s not issued: %s", space, exc)
            return None
        if why is not None:
            log.info("collector TLS pair %s/%s issued: %s", space, self.secret, why)
        return ca.cert_pem.decode()
