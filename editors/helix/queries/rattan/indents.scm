; Helix indentation: one level inside each bracket.
[
  (body)
  (record_body)
  (assignment_block)
  (parameter_list)
  (list)
] @indent

["}" ")" "]"] @outdent
