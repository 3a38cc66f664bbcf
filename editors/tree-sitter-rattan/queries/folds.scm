; Folding: every block that can span lines.
[
  (body)
  (record_body)
  (assignment_block)
  (parameter_list)
  (list)
] @fold
