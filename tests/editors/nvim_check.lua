-- Run by tests/editors/test_neovim.py inside `nvim --headless` on a .rtn file: reads what the
-- editor set up for the buffer and writes it as JSON to $RATTAN_NVIM_OUT.
local out = {}
local buf = vim.api.nvim_get_current_buf()
out.version = vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch
out.filetype = vim.bo.filetype
out.commentstring = vim.bo.commentstring
out.shiftwidth = vim.bo.shiftwidth
out.expandtab = vim.bo.expandtab
out.syntax = vim.bo.syntax
out.indentexpr = vim.bo.indentexpr

-- The first keyword `let` (0-based row and column) and the group that colours it.
local row, col
for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
  local c = line:find('^let ')
  if c then
    row, col = i - 1, c - 1
    break
  end
end
out.keyword_row = row
local function final_group(id)
  return vim.fn.synIDattr(vim.fn.synIDtrans(id), 'name')
end
out.syntax_group = final_group(vim.fn.synID(row + 1, col + 1, 1))

local hl = vim.treesitter.highlighter and vim.treesitter.highlighter.active[buf]
out.treesitter = hl ~= nil
if hl then
  local groups = {}
  if vim.inspect_pos then -- 0.9+
    for _, c in ipairs(vim.inspect_pos(buf, row, col).treesitter) do
      table.insert(groups, final_group(vim.fn.hlID(c.hl_group)))
    end
  else -- 0.7 and 0.8: the captures of the highlighter's own query at that place
    local q = hl:get_query('rattan')
    local tree = hl.tree:parse()[1]
    for id, node in q:query():iter_captures(tree:root(), buf, row, row + 1) do
      local sr, sc, _, ec = node:range()
      if sr == row and sc <= col and col < ec then
        table.insert(groups, final_group(q.hl_cache[id]))
      end
    end
  end
  out.treesitter_groups = groups
end

-- `gcc` comments the line out, and again uncomments it.
local before = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
vim.cmd('normal gcc')
out.commented = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
vim.cmd('normal gcc')
out.uncommented = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
out.original = before

local f = assert(io.open(os.getenv('RATTAN_NVIM_OUT'), 'w'))
f:write(vim.fn.json_encode(out))
f:close()
vim.cmd('qa!')
