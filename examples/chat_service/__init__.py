"""A websocket chat service on ctxmigrate's session layer, served by uvicorn workers.

``python -m examples.chat_service --redis-url redis://127.0.0.1:6379/0`` runs it;
``app.py`` is the part an application copies (the handler around
``manager.conversation(...)``), ``deployment.py`` starts and drives a running
service from Python (the tests and ``benchmarks/bench_deployment.py`` use it).
"""
