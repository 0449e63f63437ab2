-- switchyard.init: the node's Lua set-up, for init_by_lua (init) and init_worker_by_lua (init_worker).
--
-- init runs in the master at every start and reload: it checks the dictionaries the module needs,
-- asks for a privileged agent (one process per node, where the health checks run once rather than
-- once per worker), and reads runtime-state.json. Debian's nginx lacks OpenResty's patch that the
-- privileged agent needs; there the workers elect one checker (still one per node; see
-- switchyard.health). Reading runtime-state.json in the master, as the master's user, means
-- the workers' user needs no access to the config directory; applying it waits for the workers,
-- so a reload that fails after init leaves the running workers' state as it was.
--
-- init_worker applies that file to sy_state once per file: the first worker takes a lock in
-- sy_locks and loads it; the others wait for it (a bounded wait, before they serve anything),
-- so no request meets a half-loaded state at start. A reload with an unchanged file changes
-- nothing, so what was pushed since stays; a changed file is applied with the usual revision rule:
-- entries pushed at run time with a newer revision than the file's win.

local ffi = require("ffi")
local state = require("switchyard.state")

local M = {}

local REQUIRED_DICTS = { "sy_state", "sy_live", "sy_locks" }
local WAIT_STEP = 0.005
local WAIT_STEPS = 2000
local FILE_LOCK_TTL = 60

pcall(ffi.cdef, "int usleep(unsigned int usec);")

-- init_worker cannot yield (no ngx.sleep there): block the worker, which serves nothing yet.
local function block(seconds)
  ffi.C.usleep(math.floor(seconds * 1e6))
end

local state_file
local state_text
local has_agent = false

local function read(path)
  local f, err = io.open(path, "rb")
  if f == nil then
    return nil, err
  end
  local text = f:read("*a")
  f:close()
  return text
end

--- init_by_lua: opts.stateFile (runtime-state.json's path), opts.cacheSize (decoded entries each
--- worker keeps), opts.maxBodyBytes (the largest push the runtime channel takes).
function M.init(opts)
  require("resty.core")
  opts = opts or {}
  for _, name in ipairs(REQUIRED_DICTS) do
    if ngx.shared[name] == nil then
      error("switchyard: lua_shared_dict " .. name .. " is missing from the configuration", 0)
    end
  end
  local ok, err = require("ngx.process").enable_privileged_agent()
  has_agent = ok == true
  if not has_agent then
    ngx.log(ngx.NOTICE, "switchyard: no privileged agent (", err, "): the workers elect one health checker")
  end
  state.configure(opts)
  require("switchyard.admin").configure(opts)
  -- Loaded here so every worker starts with them compiled.
  require("switchyard.balancer")
  state_file = opts.stateFile
  if state_file ~= nil then
    local text, read_error = read(state_file)
    state_text = text
    if text == nil then
      ngx.log(ngx.NOTICE, "switchyard: no runtime state file: ", read_error)
    end
  end
end

local function load_state()
  local text = state_text
  state_text = nil
  if text == nil then
    return
  end
  local dict, locks = ngx.shared.sy_state, ngx.shared.sy_locks
  local digest = ngx.md5(text)
  if dict:get("m:file") == digest then
    return
  end
  local lock = "file:" .. digest
  if not locks:add(lock, ngx.worker.pid(), FILE_LOCK_TTL) then
    for _ = 1, WAIT_STEPS do
      if dict:get("m:file") == digest then
        return
      end
      block(WAIT_STEP)
    end
    ngx.log(ngx.WARN, "switchyard: the worker loading ", state_file, " did not finish; loading it here")
  end
  local result, detail = state.load_file(state_file, text, block)
  locks:delete(lock)
  if result == nil then
    ngx.log(ngx.ERR, "switchyard: runtime state file not loaded: ", detail)
  elseif result == "loaded" then
    ngx.log(ngx.NOTICE, "switchyard: loaded ", state_file, ": applied ", detail.applied, ", stale ", #detail.stale,
      ", failed ", #detail.failed)
    for _, f in ipairs(detail.failed) do
      ngx.log(ngx.ERR, "switchyard: ", f.key, ": ", f.error)
    end
  end
end

local function start_health()
  local ok, health = pcall(require, "switchyard.health")
  if not ok then
    if not tostring(health):find("module 'switchyard.health' not found", 1, true) then
      ngx.log(ngx.ERR, "switchyard.health failed to load: ", health)
    end
    return
  end
  local started, err = pcall(health.start)
  if not started then
    ngx.log(ngx.ERR, "switchyard.health.start failed: ", err)
  end
end

--- init_worker_by_lua: workers load the state file; the privileged agent, or without one every
--- worker (they elect one checker), runs the health checks.
function M.init_worker()
  if require("ngx.process").type() == "privileged agent" then
    state_text = nil
    return start_health()
  end
  load_state()
  -- Every worker starts health: they elect one checker through a lease in sy_locks (see
  -- switchyard.health), so checks run once per node and a new checker takes over within a
  -- quarter second when the old one exits (a reload) or within the lease when it dies.
  if not has_agent then
    start_health()
  end
end

return M
