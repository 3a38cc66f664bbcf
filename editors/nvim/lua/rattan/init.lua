-- Tree-sitter support and the language server for Rattan topologies (.rtn) and documents.
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

-- Upstream Rattan's TOML/YAML documents, by file name: the names the document schema is given to
-- (editors/vscode/package.json's yamlValidation and tomlValidation).
M.document_patterns = { '*.rattan.toml', 'rattan.toml', '*.rattan.yaml', '*.rattan.yml', 'rattan.yaml', 'rattan.yml' }

--- Start `rattan lsp` for every `.rtn` buffer and every buffer named like a Rattan TOML/YAML
--- document (`M.document_patterns`), one server per folder. Neovim 0.7 and later (0.11's
--- `vim.lsp.config` does the same for `.rtn` files; this also covers the TOML/YAML names, which
--- a filetype cannot tell from other TOML/YAML files). `opts.cmd` (default `{ 'rattan', 'lsp' }`)
--- is the command; other `opts` go to the client's configuration (`vim.lsp.start`, 0.7's `start_client`).
function M.setup_lsp(opts)
  opts = opts or {}
  local config = vim.tbl_extend('force', { name = 'rattan', cmd = { 'rattan', 'lsp' } }, opts)
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    vim.notify('rattan: `' .. config.cmd[1] .. '` is not an executable; pass setup_lsp({ cmd = { "/path/to/bin/rattan", "lsp" } })',
      vim.log.levels.WARN)
  end
  local clients = {} -- folder -> client id (0.7)
  local function attach(args)
    local name = vim.api.nvim_buf_get_name(args.buf)
    if name == '' then
      return
    end
    local root = vim.fn.fnamemodify(name, ':p:h')
    if vim.lsp.start then -- 0.8+: reuses the client of the same name and folder
      vim.lsp.start(vim.tbl_extend('force', config, { root_dir = root }), { bufnr = args.buf })
      return
    end
    local id = clients[root] -- 0.7
    if not id or not vim.lsp.get_client_by_id(id) then
      id = vim.lsp.start_client(vim.tbl_extend('force', config, { root_dir = root }))
      clients[root] = id
    end
    if id then
      vim.lsp.buf_attach_client(args.buf, id)
    end
  end
  local group = vim.api.nvim_create_augroup('rattan_lsp', { clear = true })
  vim.api.nvim_create_autocmd('FileType', { group = group, pattern = 'rattan', callback = attach })
  vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' },
    { group = group, pattern = M.document_patterns, callback = attach })
end

return M
