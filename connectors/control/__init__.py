"""The control socket: a running `docent run` owns the embedded store, and CLI commands reach it here.

    holder.py   who holds a data dir (a lock, the holder's pid and command, the socket's path)
    server.py   the socket `docent run` serves (forwarded uploads, removals, questions)
    client.py   the CLI's side: `open_or_forward` — open the store here, or go through the holder
    wire.py     what crosses the socket (docent's dataclasses as JSON, user errors as themselves)
"""
