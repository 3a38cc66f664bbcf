; Highlighting of .rtn files for Helix: the patterns of
; editors/tree-sitter-rattan/queries/highlights.scm under Helix's capture names, the specific ones
; first (in Helix the first match of a node wins).

(comment) @comment

; `in` and `out` of a compound cell type
((reference name: (dotted_name . (identifier) @variable.builtin .))
  (#match? @variable.builtin "^(in|out)$"))

; A timeline's target parameter: `up.rate`
(assignment target: (dotted_name (identifier) @variable.other.member .))

; A record's kind (`droptail { ... }`) and its fields, a cell's parameters
(record kind: (dotted_name (identifier) @type .))
(field name: (identifier) @variable.other.member)

; Cell types, where a cell is declared or written inline
(cell_declaration type: (dotted_name (identifier) @namespace . "."))
(inline_cell type: (dotted_name (identifier) @namespace . "."))
(cell_declaration type: (dotted_name (identifier) @type .))
(inline_cell type: (dotted_name (identifier) @type .))

; Definitions
(channel_definition name: (identifier) @namespace)
(cell_type_definition name: (identifier) @type)
(parameter name: (identifier) @variable.parameter)
(parameter type: (identifier) @type.builtin)
(let_statement name: (identifier) @constant)
(endpoints_declaration name: (identifier) @variable)
(cell_declaration name: (identifier) @variable)
(import_statement alias: (identifier) @namespace)

; Names in general
(reference name: (dotted_name (identifier) @variable))
(assignment target: (dotted_name (identifier) @variable))
(name (dotted_name (identifier) @variable))
(port (number) @constant.numeric.integer)

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
] @keyword.control.import

(string) @string
(number) @constant.numeric
(quantity) @constant.numeric
[(true) (false)] @constant.builtin.boolean

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
