"""The use cases: async code over ``server.core`` and the ports of ``server.ports``.

One module per part of the flow.  Each SPEC §4 method is a function registered with
:func:`~server.services.service.method`; importing this package registers them all in
``server.services.service.HANDLERS``, the method table the web layer dispatches through.
"""

from server.services import avatars, batch, players, previews, publish, styles  # noqa: F401
