"""Makes a benchmark measure this checkout's rattan, whichever kind of install is present.

Imported first by each benchmark (a script's own folder is on sys.path). The
checkout's rattan/ has the installed layout, and its engine comes from the
installed build when the checkout has none (rattan/engine/locate.py), so this
works next to an editable or a regular install. PYTHONPATH carries the choice
to the `python -m rattan` processes a benchmark starts.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
