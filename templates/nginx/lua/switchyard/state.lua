-- switchyard.state: the node's runtime state (upstreams and tenant caps) in the sy_state shared
-- dictionary, where every worker, and every config generation across a reload, sees one copy.
--
-- Writes come from the runtime channel (admin.lua) and from runtime-state.json (init.lua); both go
-- through apply(), which validates the whole push before it changes anything (a bad field is a
-- 400 naming it, and nothing changes), refuses entries older than those held (a slow push never
-- undoes a newer one), and stores with safe_set, so a full dictionary fails that entry alone and
-- never evicts another one.
--
-- Reads run per request: upstream(name) and caps(tenant) copy one dictionary value and decode it
-- only when it changed since this worker last decoded it (a per-worker LRU cache).
--
-- Layout of sy_state (short keys: they are stored once per entry):
--   u:<upstream>     "<hash>:<revision>:<json>"  the validated NginxUpstream (nulls left out)
--   c:<tenant>       "<hash>:<revision>:<json>"  the validated NginxCaps
--   x:u:<upstream>, x:c:<tenant>  revision of a removal (expires), so an older push cannot revive it
--   m:file           md5 of the runtime-state.json last loaded
--   m:fileRevision   its revision

local cjson = require("cjson.safe")
local lrucache = require("resty.lrucache")
local check = require("switchyard.state_check")

local M = {}

local HASH_LEN = 16
local TOMBSTONE_TTL = 3600
local APPLY_LOCK = "state:apply"
local APPLY_LOCK_TTL = 30
local LOCK_ATTEMPTS = 2500
local LOCK_WAIT = 0.002

local function dict()
  return ngx.shared.sy_state
end

local cache
local cache_size = 20000

--- Sets the per-worker decode cache's size (entries); call before the first read.
function M.configure(opts)
  if opts and opts.cacheSize then
    cache_size = opts.cacheSize
  end
end

local function encode_entry(hash, revision, json)
  return hash .. ":" .. string.format("%d", revision) .. ":" .. json
end

-- The hash and revision of a stored entry, and where its JSON starts.
local function header(raw)
  local sep = raw:find(":", HASH_LEN + 2, true)
  return raw:sub(1, HASH_LEN), tonumber(raw:sub(HASH_LEN + 2, sep - 1)), sep + 1
end

local function decoded(key)
  local raw = dict():get(key)
  if raw == nil then
    return nil
  end
  if cache == nil then
    cache = assert(lrucache.new(cache_size))
  end
  local hit = cache:get(key)
  -- Strings are interned: equal contents are one object, so this compare is a pointer compare.
  if hit ~= nil and hit[1] == raw then
    return hit[2]
  end
  local _, _, start = header(raw)
  local value = cjson.decode(raw:sub(start))
  if value == nil then
    return nil
  end
  cache:set(key, { raw, value })
  return value
end

--- The upstream's runtime entry as a Lua table shaped as NginxUpstream (JSON nulls are nil), or
--- nil when the node holds none. Shared by the worker's readers: do not modify it.
function M.upstream(name)
  return decoded("u:" .. name)
end

--- The tenant's caps { maxConnections, requestsPerSecond }, or nil when none are held.
function M.caps(tenant)
  return decoded("c:" .. tenant)
end

--- The names of every upstream held, in no particular order.
function M.upstream_names()
  local names = {}
  for _, key in ipairs(dict():get_keys(0)) do
    if key:sub(1, 2) == "u:" then
      names[#names + 1] = key:sub(3)
    end
  end
  return names
end

--- What the node holds, shaped as HeldState: per-entry revision and hash, and the file revision.
function M.held()
  local d = dict()
  local upstreams, caps = {}, {}
  for _, key in ipairs(d:get_keys(0)) do
    local kind = key:sub(1, 2)
    if kind == "u:" or kind == "c:" then
      local raw = d:get(key)
      if raw ~= nil then
        local hash, revision = header(raw)
        local into = kind == "u:" and upstreams or caps
        into[key:sub(3)] = { revision = revision, hash = hash }
      end
    end
  end
  return { upstreams = upstreams, caps = caps, fileRevision = d:get("m:fileRevision") or 0 }
end

local function full_error(err)
  if err == "no memory" then
    return "sy_state is full (no memory): the entry keeps what was held"
  end
  return "sy_state: " .. tostring(err)
end

local function held_revision(d, key)
  local raw = d:get(key)
  if raw ~= nil then
    local _, revision = header(raw)
    return revision, raw
  end
  return d:get("x:" .. key), nil
end

local function store(d, entry, reply)
  local key = entry.kind .. ":" .. entry.name
  local revision, raw = held_revision(d, key)
  if revision ~= nil and entry.revision < revision then
    reply.stale[#reply.stale + 1] = entry.label
    return
  end
  local value = encode_entry(entry.hash, entry.revision, entry.json)
  if raw ~= value then
    local ok, err = d:safe_set(key, value)
    if not ok then
      -- A set of another size frees the old value before it allocates the new one: put it back
      -- (its space was just freed, and no other writer runs while the lock is held).
      if raw ~= nil and not d:safe_set(key, raw) then
        ngx.log(ngx.ERR, "switchyard: ", entry.label, " could not be stored nor kept: it is gone")
      end
      reply.failed[#reply.failed + 1] = { key = entry.label, error = full_error(err) }
      return
    end
  end
  reply.applied = reply.applied + 1
end

-- Removes an entry held at `revision` or older; a newer one is kept and reported stale.
local function remove(d, kind, name, revision, label, reply, counted)
  local key = kind .. ":" .. name
  local held = held_revision(d, key)
  if held ~= nil and held > revision then
    reply.stale[#reply.stale + 1] = label
    return
  end
  d:delete(key)
  -- Best effort: without room for the tombstone the removal still happens.
  d:safe_set("x:" .. key, revision, TOMBSTONE_TTL)
  if counted then
    reply.applied = reply.applied + 1
  end
end

local function commit(plan)
  local d = dict()
  local reply = { applied = 0, stale = {}, failed = {} }
  for _, entry in ipairs(plan.entries) do
    store(d, entry, reply)
  end
  for _, removal in ipairs(plan.removals) do
    remove(d, removal.kind, removal.name, removal.revision, removal.label, reply, true)
  end
  if plan.complete then
    for _, key in ipairs(d:get_keys(0)) do
      local kind, name = key:sub(1, 1), key:sub(3)
      if key:sub(2, 2) == ":" and (kind == "u" or kind == "c") and not plan.named[key] then
        local label = (kind == "u" and "upstreams." or "caps.") .. name
        remove(d, kind, name, plan.revision, label, reply, false)
      end
    end
  end
  return reply
end

-- Serialises writers across workers: a check-then-set of two concurrent pushes could otherwise
-- let the older one win. The lock expires if its holder dies.
local function with_lock(fn, sleep)
  local locks = ngx.shared.sy_locks
  for _ = 1, LOCK_ATTEMPTS do
    local ok, err = locks:add(APPLY_LOCK, ngx.worker.pid(), APPLY_LOCK_TTL)
    if ok then
      local done, result = pcall(fn)
      locks:delete(APPLY_LOCK)
      if not done then
        error(result, 0)
      end
      return result
    end
    if err ~= "exists" then
      return nil, "sy_locks: " .. tostring(err)
    end
    sleep(LOCK_WAIT)
  end
  return nil, "another push is being applied"
end

local function apply_plan(plan, sleep)
  local reply, err = with_lock(function()
    return commit(plan)
  end, sleep or ngx.sleep)
  if reply == nil then
    return nil, nil, err
  end
  return reply
end

--- Applies a decoded StatePush. Answers (PushReply) or (nil, { field, message }) for a body that
--- is not a valid StatePush, in which case nothing changed, or (nil, nil, why) when the writers'
--- lock could not be taken. `sleep(seconds)` waits for the lock (ngx.sleep where it may yield).
function M.apply(push, sleep)
  local plan, bad = check.plan(push)
  if plan == nil then
    return nil, bad
  end
  return apply_plan(plan, sleep)
end

-- runtime-state.jsonl: a header line {"complete":true,"revision":N} and then one line per entry,
-- {"upstream":<name>,"hash":..,"value":..} or {"caps":<tenant>,"hash":..,"value":..}, each at the
-- header's revision. A file holding one JSON object is a StatePush as it stands.
local function decode_file(text)
  local first_end = text:find("\n", 1, true)
  local header = cjson.decode(first_end and text:sub(1, first_end - 1) or text)
  if type(header) ~= "table" or header.upstreams ~= nil or first_end == nil then
    local whole = cjson.decode(text)
    if whole == nil then
      return nil, { field = "file", message = "is not JSON" }
    end
    return whole
  end
  local revision = header.revision
  local push = { complete = header.complete, revision = revision, upstreams = {}, caps = {} }
  local line_no = 1
  local at = first_end + 1
  while at <= #text do
    local stop = text:find("\n", at, true) or (#text + 1)
    line_no = line_no + 1
    if stop > at then
      local e = cjson.decode(text:sub(at, stop - 1))
      if type(e) ~= "table" then
        return nil, { field = "line " .. line_no, message = "is not a JSON object" }
      end
      local entry = { revision = revision, hash = e.hash, value = e.value }
      if type(e.upstream) == "string" then
        push.upstreams[e.upstream] = entry
      elseif type(e.caps) == "string" then
        push.caps[e.caps] = entry
      else
        return nil, { field = "line " .. line_no, message = "names neither an upstream nor caps" }
      end
    end
    at = stop + 1
  end
  return push
end

--- Loads runtime-state.jsonl (its text, read by the caller, or read here from `path`) unless this
--- very file was loaded already: a reload with an unchanged file keeps what was pushed since.
--- Answers "unchanged", or "loaded" and the reply, or nil and why.
function M.load_file(path, text, sleep)
  if text == nil then
    local f, err = io.open(path, "rb")
    if f == nil then
      return nil, err
    end
    text = f:read("*a")
    f:close()
  end
  local d = dict()
  local digest = ngx.md5(text)
  if d:get("m:file") == digest then
    return "unchanged"
  end
  local push, bad = decode_file(text)
  local plan
  if push ~= nil then
    plan, bad = check.plan(push)
  end
  local reply, err
  if plan ~= nil then
    reply, _, err = apply_plan(plan, sleep)
  end
  -- Marked loaded whatever came of it: the file stays what it is until the next one, so no
  -- other worker and no reload retries it.
  d:safe_set("m:file", digest)
  if plan == nil then
    return nil, path .. ": " .. bad.field .. ": " .. bad.message
  end
  if reply == nil then
    return nil, err
  end
  d:safe_set("m:fileRevision", plan.revision)
  return "loaded", reply
end

return M
