"""ctxmigrate: migrate websocket_core backends to one session per conversation.

Subpackages: ``ctxmigrate.shim`` (runtime, standard library only),
``ctxmigrate.codemods`` (analysis and LibCST rewrites), ``ctxmigrate.cli``.
"""

__version__ = "0.1.0"
