"""Front ends that turn other input formats (upstream Rattan TOML/YAML) into the `.rtn` AST."""
