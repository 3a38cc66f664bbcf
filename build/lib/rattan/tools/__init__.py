"""Tools over the AST: the formatter (`rattan fmt`) and the converter (`rattan convert`)."""
