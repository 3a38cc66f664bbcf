-- Tree-sitter support for Rattan topologies (.rtn).
local M = {}

-- editors/ of this repository: this file is editors/nvim/lua/rattan/init.lua.
local function editors_dir()
  local here = debug.getinfo(1, 'S').source:sub(2)
  return vim.fn.fnamemodify(here, ':p:h:h:h:h')
end

--- Whether a `parser/rattan.so` is on 'runtimepath'.
function M.has_parser()
  return #vim.api.nvim_get_runtime_file('parser/rattan.so', false) > 0
end

--- Start tree-sitter highlighting in `buf`. Returns false (the Vim syntax file stays) when no
--- parser is installed or it cannot be loaded.
function M.start(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  if not M.has_parser() then
    return false
  end
  local ts = vim.treesitter
  if ts.language.register then -- 0.9+: filetype `rattan` is language `rattan`
    ts.language.register('rattan', 'rattan')
  end
  local ok
  if ts.start then -- 0.8+; also turns the regex syntax off
    ok = pcall(ts.start, buf, 'rattan')
  else -- 0.7
    ok = pcall(function()
      ts.highlighter.new(ts.get_parser(buf, 'rattan'))
    end)
    if ok then
      vim.bo[buf].syntax = ''
    end
  end
  return ok
end

--- Compile editors/tree-sitter-rattan/src into `dest` (default: the `parser/` folder of
--- stdpath('data')/site, which is on 'runtimepath'). Needs a C compiler: $CC, cc, gcc or clang.
function M.build_parser(dest)
  dest = dest or (vim.fn.stdpath('data') .. '/site/parser/rattan.so')
  local src = editors_dir() .. '/tree-sitter-rattan/src'
  local cc = vim.env.CC
  if not cc or cc == '' then
    for _, c in ipairs({ 'cc', 'gcc', 'clang' }) do
      if vim.fn.executable(c) == 1 then
        cc = c
        break
      end
    end
  end
  if not cc then
    return false, 'RattanBuildParser: no C compiler found (install cc, gcc or clang)'
  end
  vim.fn.mkdir(vim.fn.fnamemodify(dest, ':h'), 'p')
  local cmd = { cc, '-o', dest, '-shared', '-fPIC', '-O2', '-I', src, src .. '/parser.c', src .. '/scanner.c' }
  local out = vim.fn.system(cmd)
  if vim.v.shell_error ~= 0 then
    return false, 'RattanBuildParser: ' .. table.concat(cmd, ' ') .. ' failed:\n' .. out
  end
  return true, 'RattanBuildParser: wrote ' .. dest
end

return M
