"""The compiler's intermediate representation: frozen nodes with spans, and values."""
