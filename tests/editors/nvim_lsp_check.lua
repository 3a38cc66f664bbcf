-- Run by tests/editors/test_neovim_lsp.py inside `nvim --headless`, after the docs' language server
-- set-up: opens a .rtn file with a mistake, a Rattan TOML document and another TOML file, and
-- writes as JSON to $RATTAN_NVIM_OUT what the editor got from `rattan lsp` in each.
local out = {}
local dir = os.getenv('RATTAN_NVIM_DIR')

local function clients(buf)
  local n = 0
  for _ in pairs(vim.lsp.buf_get_clients(buf)) do n = n + 1 end
  return n
end

local ok, err = pcall(function()
  vim.cmd('edit ' .. dir .. '/broken.rtn')
  local rtn = vim.api.nvim_get_current_buf()
  vim.wait(30000, function() return #vim.diagnostic.get(rtn) > 0 end, 50)
  out.rtn_clients = clients(rtn)
  out.rtn_diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(rtn)) do table.insert(out.rtn_diagnostics, tostring(d.code)) end

  vim.cmd('edit ' .. dir .. '/path.rattan.toml')
  local toml = vim.api.nvim_get_current_buf()
  vim.wait(10000, function() return clients(toml) > 0 end, 50)
  out.toml_clients = clients(toml)
  out.toml_labels = {}
  for _, client in pairs(vim.lsp.buf_get_clients(toml)) do
    vim.wait(10000, function() return client.initialized end, 50)
    local reply = client.request_sync('textDocument/completion', {
      textDocument = { uri = vim.uri_from_bufnr(toml) }, position = { line = 2, character = 0 } }, 10000, toml)
    local items = reply and reply.result or {}
    for _, item in ipairs(items.items or items) do table.insert(out.toml_labels, item.label) end
  end

  vim.cmd('edit ' .. dir .. '/Cargo.toml')
  out.other_clients = clients(vim.api.nvim_get_current_buf())
end)
out.error = not ok and tostring(err) or nil
local f = assert(io.open(os.getenv('RATTAN_NVIM_OUT'), 'w'))
f:write(vim.fn.json_encode(out))
f:close()
vim.cmd('qa!')
