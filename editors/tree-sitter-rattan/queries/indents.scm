; Indentation for nvim-treesitter (`indent = { enable = true }`): one level inside each bracket.
[
  (body)
  (record_body)
  (assignment_block)
  (parameter_list)
  (list)
] @indent.begin

["}" ")" "]"] @indent.end @indent.branch

(comment) @indent.auto
