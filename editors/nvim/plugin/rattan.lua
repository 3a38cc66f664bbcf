-- Rattan topologies (.rtn) in Neovim: tree-sitter highlighting where the parser is installed
-- (`:RattanBuildParser` compiles it), the Vim syntax file otherwise. Neovim 0.7 and later.
if vim.g.loaded_rattan then
  return
end
vim.g.loaded_rattan = true

if vim.filetype and vim.filetype.add then -- 0.8+: the Lua filetype detection
  vim.filetype.add({ extension = { rtn = 'rattan' } })
end

vim.api.nvim_create_user_command('RattanBuildParser', function(opts)
  local ok, msg = require('rattan').build_parser(opts.args ~= '' and opts.args or nil)
  vim.notify(msg, ok and vim.log.levels.INFO or vim.log.levels.ERROR)
end, { nargs = '?', complete = 'file', desc = 'Compile the tree-sitter parser of .rtn files' })

vim.api.nvim_create_autocmd('FileType', {
  pattern = 'rattan',
  group = vim.api.nvim_create_augroup('rattan_treesitter', { clear = true }),
  callback = function(args)
    if vim.g.rattan_treesitter ~= false then
      require('rattan').start(args.buf)
    end
  end,
})
