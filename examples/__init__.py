"""Runnable applications that a user copies: see examples/chat_service/README.md."""
