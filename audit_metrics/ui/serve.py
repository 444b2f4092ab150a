"""Start the dashboard warm: ``python -m audit_metrics.ui.serve [streamlit options]``.

``streamlit run app.py`` imports the app's code (the views, polars, scipy, plotly: about 1.7 s on the 2-core test
machine) only when the first visitor's page runs the script, and loads (or computes) the results and builds the
Overview's rug on that first run, so the first visitor after every restart waited for all of it. This launcher
imports the dashboard's modules first, then hands over to Streamlit's own command line (``streamlit run app.py``
with the options given) in the same process, and as soon as the server answers it renders the Overview once in
a session of its own (the readiness probe's, :mod:`audit_metrics.ui.readiness`), which fills the shared caches.
A visitor who arrives meanwhile waits on the same caches (Streamlit computes each cached value once), never for
a second computation. Used by ``scripts/dev.sh app`` and the Dockerfile (README "Performance").
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

APP = Path("app.py")  # in the folder it is started from, as `streamlit run app.py` (the project; /app in the image)


def warm_imports() -> list[str]:
    """Import every module of the dashboard (``audit_metrics.ui``) and what they import; returns their names."""
    from audit_metrics import ui

    names = [m.name for m in pkgutil.iter_modules(ui.__path__, prefix=f"{ui.__name__}.")
             if m.name != __name__]
    for name in names:
        importlib.import_module(name)
    return names


def local_url() -> str:
    """This server's own address, from Streamlit's configuration (port, address, base path) once it is loaded."""
    from streamlit import config

    address = config.get_option("server.address")
    host = "127.0.0.1" if address in (None, "", "0.0.0.0", "::") else address  # listening on all: this machine
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"http://{host}:{config.get_option('server.port')}/{base}".rstrip("/")


def warm_up(timeout: float = 300.0) -> tuple[bool, str]:
    """Once the server answers, render the Overview in a session of our own (the readiness probe): the results
    and the Overview's figures are then in memory for the first visitor. Returns the probe's (ready, message)."""
    from streamlit.runtime import Runtime

    from audit_metrics.ui import readiness

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Runtime.exists():  # created after the configuration was read: the port is the one in use
            url = local_url()
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    return readiness.check_ready(url, timeout=max(deadline - time.monotonic(), 1.0))
            except OSError:
                pass
        time.sleep(0.1)
    return False, f"the server did not answer within {timeout:g} s"


def _report_warm_up() -> None:
    started = time.perf_counter()
    ok, message = warm_up()
    print(f"audit_metrics: warm-up {'done' if ok else 'failed'} after {time.perf_counter() - started:.1f} s "
          f"({message})", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """``streamlit run app.py ARGV...`` after :func:`warm_imports`, with :func:`warm_up` once it listens."""
    if not APP.is_file():
        sys.exit(f"audit_metrics: no app.py in {Path.cwd()}: start the dashboard from the project's folder")
    started = time.perf_counter()
    warm_imports()
    print(f"audit_metrics: dashboard code imported in {time.perf_counter() - started:.1f} s; starting Streamlit",
          file=sys.stderr, flush=True)
    from streamlit.web import cli

    threading.Thread(target=_report_warm_up, name="audit-metrics-warm-up", daemon=True).start()

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
