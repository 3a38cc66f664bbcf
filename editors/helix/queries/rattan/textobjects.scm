; Helix text objects: `maf`/`mif` select a channel or compound type, `mac` a comment.
(channel_definition body: (body) @function.inside) @function.around
(cell_type_definition body: (body) @function.inside) @function.around
(parameter) @parameter.inside
(field) @parameter.inside
(comment) @comment.inside
(comment)+ @comment.around
