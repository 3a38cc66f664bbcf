"""Live control and observation of a run: the API (`api.py`), its OpenAPI document (`openapi.py`),
the HTTP server (`server.py`) and the Python client (`client.py`)."""
from .api import ControlAPI, Response, Target
from .client import Client, ControlError
from .server import AddressError, ControlServer, parse_address

__all__ = ["ControlAPI", "Response", "Target", "Client", "ControlError", "ControlServer", "AddressError", "parse_address"]
