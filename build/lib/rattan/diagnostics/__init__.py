"""Diagnostics as data: codes, the Diagnostic record, and its renderers."""
from .codes import CODES, Code
from .diagnostic import Diagnostic, Label, Severity, Sink, did_you_mean
from .render import render_json, render_text

__all__ = ["CODES", "Code", "Diagnostic", "Label", "Severity", "Sink", "did_you_mean",
           "render_json", "render_text"]
