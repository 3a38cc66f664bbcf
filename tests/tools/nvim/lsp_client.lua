-- Headless Neovim as a real client of `rattan lsp` (driven by tests/tools/test_lsp_nvim.py).
-- Opens main.rtn (which has errors), waits for the diagnostics, applies the quick fix of each,
-- renames a cell used in a chain and a timeline, renames a compound's inner cell from the
-- timeline of the importing file, tries a refused rename, formats, writes every buffer, quits.
-- Works with Neovim 0.7 (Debian's) and later: only APIs 0.7 has are used.
local out = {}
local function log(s) table.insert(out, s) end
local notes = {}
vim.notify = function(msg, _) table.insert(notes, tostring(msg)) end

local function fail(msg)
  log("FAIL " .. msg)
  vim.fn.writefile(out, os.getenv("RATTAN_NVIM_LOG"))
  vim.cmd("cquit 1")
end

local function wait(ms, cond, what)
  if not vim.wait(ms, cond, 20) then fail("timed out waiting for " .. what) end
end

local function cursor_on(pattern, nth)
  -- put the cursor on the nth match of a Lua pattern in the current buffer
  local seen = 0
  for i, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
    local init = 1
    while true do
      local s = string.find(line, pattern, init)
      if not s then break end
      seen = seen + 1
      if seen == (nth or 1) then
        vim.api.nvim_win_set_cursor(0, { i, s - 1 })
        return
      end
      init = s + 1
    end
  end
  fail("no match for " .. pattern)
end

local function text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
end

local ok, err = pcall(function()
  vim.o.hidden = true
  local dir = os.getenv("RATTAN_NVIM_DIR")
  vim.cmd("edit " .. dir .. "/main.rtn")
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = "rattan",
    cmd = { os.getenv("RATTAN_PYTHON"), "-m", "rattan", "lsp" },
    root_dir = dir,
  })
  if not id then fail("the client did not start") end
  vim.lsp.buf_attach_client(buf, id)
  local client = vim.lsp.get_client_by_id(id)
  wait(20000, function() return client.initialized end, "initialize")

  -- 1. the diagnostics
  wait(20000, function() return #vim.diagnostic.get(buf) >= 2 end, "diagnostics")
  local codes = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do table.insert(codes, tostring(d.code)) end
  table.sort(codes)
  log("diagnostics " .. table.concat(codes, " "))

  -- 2. the quick fixes: ask for the code actions at each diagnostic, apply the first offered,
  --    until no diagnostic is left
  for _ = 1, 6 do
    local diags = vim.diagnostic.get(buf)
    if #diags == 0 then break end
    local action
    for _, d in ipairs(diags) do
      local params = vim.lsp.util.make_range_params()
      params.range = { start = { line = d.lnum, character = d.col },
                       ["end"] = { line = d.end_lnum, character = d.end_col } }
      params.context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(buf, d.lnum) }
      local reply = client.request_sync("textDocument/codeAction", params, 10000, buf)
      if reply and reply.result and #reply.result > 0 then
        action = reply.result[1]
        break
      end
    end
    if not action then fail("no quick fix for any of " .. #diags .. " diagnostics") end
    log("quickfix " .. action.title)
    local before = vim.b.changedtick
    vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
    wait(20000, function()
      return vim.b.changedtick ~= before and #vim.diagnostic.get(buf) < #diags
    end, "the diagnostics after a quick fix")
  end
  log("diagnostics after fixes " .. #vim.diagnostic.get(buf))

  -- 3. rename the cell `up`, used in a chain and in the timeline
  cursor_on("up %->")
  local tick = vim.b.changedtick
  vim.lsp.buf.rename("uplink")
  wait(20000, function() return vim.b.changedtick ~= tick end, "the rename of up")
  -- 4. from the timeline of this file, rename `bw`, the inner cell of the compound type that
  --    lib.rtn defines: lib.rtn's declaration and chain change too
  cursor_on("%.bw%.", 1)
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_win_get_cursor(0)[1], vim.api.nvim_win_get_cursor(0)[2] + 1 })
  tick = vim.b.changedtick
  vim.lsp.buf.rename("shaper")
  wait(20000, function() return vim.b.changedtick ~= tick end, "the rename of bw")
  -- 5. a rename the server refuses: a built-in cell type
  cursor_on("delay {")
  tick = vim.b.changedtick
  local n = #notes
  vim.lsp.buf.rename("lag")
  wait(20000, function() return #notes > n end, "the refusal")
  log("refused " .. notes[#notes]:gsub("\n", " "))
  if vim.b.changedtick ~= tick then fail("a refused rename changed the text") end

  -- 6. format
  if vim.lsp.buf.format then
    vim.lsp.buf.format({ timeout_ms = 10000 })
  else
    vim.lsp.buf.formatting_sync(nil, 10000)
  end
  log("formatted")
  vim.cmd("silent wall")
  vim.fn.writefile(vim.split(text(), "\n"), dir .. "/main.after")
end)
if not ok then fail(tostring(err)) end
vim.fn.writefile(out, os.getenv("RATTAN_NVIM_LOG"))
vim.cmd("qall!")
