"""The binding of the C packet engine: the only module that touches cffi's `ffi` and `lib`."""
from .locate import load_engine

load_engine()  # before the binding imports `_engine`: a checkout may use an installed build

from .binding import ABI_VERSION, Counters, Engine, EngineError  # noqa: E402

__all__ = ["ABI_VERSION", "Counters", "Engine", "EngineError"]
