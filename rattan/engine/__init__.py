"""The binding of the C packet engine: the only module that touches cffi's `ffi` and `lib`."""
from .binding import ABI_VERSION, Counters, Engine, EngineError

__all__ = ["ABI_VERSION", "Counters", "Engine", "EngineError"]
