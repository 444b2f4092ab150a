"""Start the dashboard with its code already imported: ``python -m audit_metrics.ui.serve [streamlit options]``.

``streamlit run app.py`` imports the app's code (the views, polars, scipy, plotly: about 1.7 s on the 2-core test
machine) only when the first visitor's page runs the script, so the first visitor after every restart waited for
it. This launcher imports the dashboard's modules first, then hands over to Streamlit's own command line
(``streamlit run app.py`` with the options given), in the same process: the modules stay imported and the first
page only loads the stored results (README "Performance"). Used by ``scripts/dev.sh app`` and the Dockerfile.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
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


def main(argv: list[str] | None = None) -> None:
    """``streamlit run app.py ARGV...`` after :func:`warm_imports`."""
    if not APP.is_file():
        sys.exit(f"audit_metrics: no app.py in {Path.cwd()}: start the dashboard from the project's folder")
    started = time.perf_counter()
    warm_imports()
    print(f"audit_metrics: dashboard code imported in {time.perf_counter() - started:.1f} s; starting Streamlit",
          file=sys.stderr, flush=True)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
