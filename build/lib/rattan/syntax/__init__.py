"""Syntax of `.rtn`: the Lark grammar, the post-lexer, the parser and the AST."""
