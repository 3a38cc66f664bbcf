; Scopes and definitions: a file, a channel's or compound type's body.
(source_file) @local.scope
(body) @local.scope

(let_statement name: (identifier) @local.definition)
(cell_declaration name: (identifier) @local.definition)
(endpoints_declaration name: (identifier) @local.definition)
(cell_type_definition name: (identifier) @local.definition)
(parameter name: (identifier) @local.definition)
(import_statement alias: (identifier) @local.definition)

(name (dotted_name . (identifier) @local.reference))
(reference name: (dotted_name . (identifier) @local.reference))
