"""``glassnet serve``: the glass box in a browser.

Draw a digit (or drop a photo) and watch every layer of a real model answer; click a neuron for
its z = W·a + b; take one training step and see ∂C/∂z layer by layer; the deck's worked example
and gradient descent with a learning-rate slider. In English or Traditional Chinese. The page is
served by Starlette under uvicorn, from this package's own files: nothing is fetched from
elsewhere, so it works offline.
"""

from __future__ import annotations

from pathlib import Path

from glassnet.serve.app import Models, create_app

__all__ = ["Models", "create_app", "serve"]


def serve(
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = True,
    folder: Path | None = None,
) -> None:
    """Serve the page until Ctrl-C: for ``model`` (a ``.keras`` file), or for every ``.keras``
    file in ``folder`` (the current one by default)."""
    import threading
    import webbrowser

    import uvicorn

    models = Models.from_arguments(model, Path.cwd() if folder is None else folder)
    _check_port(host, port)
    everywhere = host in ("0.0.0.0", "::")
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    if everywhere:  # reachable from other machines; this one opens it at the loopback address
        url = f"http://127.0.0.1:{port}/"
    print(f"glassnet is serving {', '.join(models.names()) or 'no model'} at {url}")
    if everywhere:
        print(f"Listening on every network interface ({host}): others on the network can "
              "reach this page too.")  # fmt: skip
    print("Press Ctrl-C to stop.")
    if not models.names():
        print("No .keras model here: the page can train one, or use `glassnet train`.")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    from glassnet.serve.guard import guard

    uvicorn.run(create_app(models), host=host, port=port, log_level="warning", **guard())


def _check_port(host: str, port: int) -> None:
    """Say so before starting, where another program already listens on the port."""
    import socket

    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise OSError(f"Cannot listen on {host!r}: no such address on this machine.") from None
    with socket.socket(info[0], socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(info[4])
        except OSError:
            raise OSError(
                f"Port {port} on {host} is in use (another glassnet serve?); choose another with "
                "--port."
            ) from None
