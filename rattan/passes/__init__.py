"""The compiler's passes, in the order they run. Each is `pass(program, context) -> program`.

Checking passes always run, so that one compilation reports every error it can;
optimizing passes run only on a program without errors, and lowering passes (facts the engine
needs about the final graph) after them, on a program without errors, optimized or not.
"""
from .check_graph import check_graph, drop_idle_cells
from .check_return_paths import check_return_paths
from .check_timeline import check_timeline
from .evaluate import evaluate
from .expand_compounds import expand_compounds
from .expand_python_cells import expand_python_cells
from .load_imports import load_imports
from .load_traces import load_traces
from .mark_cuts import mark_cuts
from .mark_segmenting import mark_segmenting
from .optimize import eliminate_dead, fuse_cells, remove_noops
from .resolve_names import resolve_names
from .set_lets import set_lets
from .validate_params import validate_params

CHECKS = [
    set_lets,
    load_imports,
    resolve_names,
    expand_compounds,
    evaluate,
    validate_params,
    expand_python_cells,
    check_graph,
    check_return_paths,
    load_traces,
    check_timeline,
    drop_idle_cells,
]

OPTIMIZATIONS = [
    remove_noops,
    fuse_cells,
    eliminate_dead,
]

# Facts for the engine, computed on the final graph (after the optimizations, if they run).
LOWERINGS = [
    mark_segmenting,
    mark_cuts,
]

PIPELINE = CHECKS + OPTIMIZATIONS + LOWERINGS
PASS_NAMES = ["parse"] + [p.__name__ for p in PIPELINE]
