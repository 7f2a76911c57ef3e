"""The security gateway (B2): see :mod:`trustspace_agent.gateway.core` for the flow and
:mod:`trustspace_agent.gateway.routes` for the HTTP API. Kept empty so that importing one
of its modules (the CLI's approval signing) does not import the whole gateway."""
