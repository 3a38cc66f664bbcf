; Highlighting of .rtn files (capture names of Neovim 0.10+ and nvim-treesitter, which older
; Neovims read through their fallbacks: @keyword.import is @keyword there). Helix's copy, under
; Helix's names, is written from this file by editors/helix/build_queries.py.

(comment) @comment

[
  "let"
  "channel"
  "endpoints"
  "cell"
  "type"
  "at"
  "every"
  "for"
] @keyword

[
  "import"
  "as"
] @keyword.import

(string) @string
(number) @number
(quantity) @number
[(true) (false)] @boolean

[
  "="
  "->"
  "+"
  "-"
  "*"
  "/"
] @operator

["{" "}" "(" ")" "[" "]"] @punctuation.bracket
["," "." ":"] @punctuation.delimiter

; Names in general; the more specific patterns below come later and win (in Neovim, and in Helix
; since 25.07, the last match of a node wins)
(reference name: (dotted_name (identifier) @variable))
(assignment target: (dotted_name (identifier) @variable))
(name (dotted_name (identifier) @variable))
(port (number) @number)

; Definitions
(channel_definition name: (identifier) @module)
(cell_type_definition name: (identifier) @type.definition)
(parameter name: (identifier) @variable.parameter)
(parameter type: (identifier) @type.builtin)
(let_statement name: (identifier) @constant)
(endpoints_declaration name: (identifier) @variable)
(cell_declaration name: (identifier) @variable)
(import_statement alias: (identifier) @module)

; Cell types, where a cell is declared or written inline
(cell_declaration type: (dotted_name (identifier) @type .))
(inline_cell type: (dotted_name (identifier) @type .))
(cell_declaration type: (dotted_name (identifier) @module . "."))
(inline_cell type: (dotted_name (identifier) @module . "."))

; A record's kind (`droptail { ... }`) and its fields, a cell's parameters
(record kind: (dotted_name (identifier) @type .))
(field name: (identifier) @property)

; A timeline's target parameter: `up.rate`
(assignment target: (dotted_name (identifier) @property .))

; `in` and `out` of a compound cell type
((reference name: (dotted_name . (identifier) @variable.builtin .))
  (#match? @variable.builtin "^(in|out)$"))
