"""The back end of the compiler: the execution plan (JSON) and Graphviz output."""
from .emit import PLAN_VERSION, build_plan, plan_json
from .dot import plan_dot

__all__ = ["PLAN_VERSION", "build_plan", "plan_json", "plan_dot"]
