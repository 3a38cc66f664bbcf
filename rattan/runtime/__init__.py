"""Running plans: virtual time (`rattan sim`) and, later, real namespaces."""
