-- switchyard.state_check: validates a decoded StatePush (src/domain/nginx-runtime.ts) field by
-- field and turns it into a plan of normalised entries for state.lua to store.
--
-- Nothing a client sends reaches the dictionaries unchecked: every field is typed and bounded,
-- unknown fields are refused (a node on an older module must say which field it does not know
-- rather than drop it), and names are restricted to characters that are safe in dictionary keys,
-- stats keys (`<upstream>/<peer>`) and log lines. The first bad field fails the whole push with
-- its JSON path, such as `upstreams.t_a_web.value.peers[1].weight`.

local cjson = require("cjson.safe")

local M = {}

-- Upstream names join tenant and pool slugs (63 each) and a cookie name (32): up to 165 characters.
local MAX_NAME = 256
local MAX_PEERS = 4096
local MAX_REVISION = 2 ^ 53
local NAME = "^[%w][%w_.%-]*$"
local HASH = "^[0-9a-f]+$"
local COOKIE_NAME = "^%a[%w_%-]*$"
local COOKIE_VALUE = "^[%w._~:/=+@%-]+$"
local CHECK_PATH = "^/[%w._~%%/:@+,=!$&'()*;?%-]*$"
local CHECK_HOST = "^[%w.:%[%]%-]+$"

local function fail(path, message)
  error({ field = path, message = message }, 0)
end

local function child(path, key)
  return path == "" and key or path .. "." .. key
end

local function is_object(v)
  if type(v) ~= "table" then
    return false
  end
  for k in pairs(v) do
    if type(k) ~= "string" then
      return false
    end
  end
  return true
end

-- cjson decodes [] and {} alike; an empty table passes as either.
local function is_array(v)
  if type(v) ~= "table" then
    return false
  end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      return false
    end
  end
  return true
end

local function object(v, path, allowed)
  if not is_object(v) then
    fail(path == "" and "body" or path, "must be a JSON object")
  end
  for k in pairs(v) do
    if not allowed[k] then
      fail(child(path, k), "is not a field of this object")
    end
  end
  return v
end

local function record(v, path)
  if not is_object(v) then
    fail(path, "must be a JSON object keyed by name")
  end
  return v
end

local function array(v, path, max)
  if not is_array(v) then
    fail(path, "must be a JSON array")
  end
  if #v > max then
    fail(path, "must have at most " .. max .. " items")
  end
  return v
end

local function integer(v, path, low, high)
  if type(v) ~= "number" or v ~= v or v % 1 ~= 0 or v < low or v > high then
    fail(path, "must be an integer from " .. low .. " to " .. string.format("%.0f", high))
  end
  return v
end

local function number(v, path, low, high)
  if type(v) ~= "number" or v ~= v or v < low or v > high then
    fail(path, "must be a number from " .. low .. " to " .. string.format("%.0f", high))
  end
  return v
end

local function boolean(v, path)
  if type(v) ~= "boolean" then
    fail(path, "must be true or false")
  end
  return v
end

local function text(v, path, pattern, max, what)
  if type(v) ~= "string" or #v == 0 or #v > max or not v:find(pattern) then
    fail(path, "must be " .. what)
  end
  return v
end

local function nullable(v, path, checker, ...)
  if v == nil or v == cjson.null then
    return nil
  end
  return checker(v, path, ...)
end

local function name(v, path)
  return text(v, path, NAME, MAX_NAME, "a name: letters, digits, _ . -, starting with a letter or digit, at most " .. MAX_NAME)
end

local function one_of(v, path, choices)
  for _, c in ipairs(choices) do
    if v == c then
      return v
    end
  end
  fail(path, "must be one of " .. table.concat(choices, ", "))
end

local function ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and #s <= 15 and tonumber(a) < 256 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

local function ipv6(s)
  return #s <= 45 and s:find("^[%x:.]+$") ~= nil and select(2, s:gsub(":", "")) >= 2
end

local function address(v, path)
  if type(v) ~= "string" or not (ipv4(v) or ipv6(v)) then
    fail(path, "must be an IPv4 or IPv6 address literal")
  end
  return v
end

local function health_check(v, path)
  object(v, path, {
    type = true, path = true, host = true, expectedStatus = true, port = true,
    intervalMs = true, timeoutMs = true, rise = true, fall = true,
  })
  local kind = one_of(v.type, child(path, "type"), { "http", "https", "tcp" })
  local ranges = {}
  local statuses = array(v.expectedStatus, child(path, "expectedStatus"), 16)
  if kind ~= "tcp" and #statuses == 0 then
    fail(child(path, "expectedStatus"), "must name at least one status range for an HTTP check")
  end
  for i, range in ipairs(statuses) do
    local at = child(path, "expectedStatus") .. "[" .. (i - 1) .. "]"
    if not is_array(range) or #range ~= 2 then
      fail(at, "must be [low, high]")
    end
    local low = integer(range[1], at .. "[0]", 100, 599)
    local high = integer(range[2], at .. "[1]", low, 599)
    ranges[i] = { low, high }
  end
  local interval = integer(v.intervalMs, child(path, "intervalMs"), 100, 3600000)
  return {
    type = kind,
    path = (kind == "tcp" and v.path == "") and "" or text(v.path, child(path, "path"), CHECK_PATH, 1024, "a request path starting with /"),
    host = nullable(v.host, child(path, "host"), text, CHECK_HOST, 255, "a host name or address"),
    expectedStatus = ranges,
    port = nullable(v.port, child(path, "port"), integer, 1, 65535),
    intervalMs = interval,
    timeoutMs = integer(v.timeoutMs, child(path, "timeoutMs"), 10, interval),
    rise = integer(v.rise, child(path, "rise"), 1, 100),
    fall = integer(v.fall, child(path, "fall"), 1, 100),
  }
end

local PEER_FIELDS = { name = true, address = true, port = true, weight = true, admin = true, backup = true, cookie = true }

local function peer(v, path)
  object(v, path, PEER_FIELDS)
  return {
    name = name(v.name, child(path, "name")),
    address = address(v.address, child(path, "address")),
    port = integer(v.port, child(path, "port"), 1, 65535),
    weight = integer(v.weight, child(path, "weight"), 0, 256),
    admin = one_of(v.admin, child(path, "admin"), { "ready", "drain", "maint" }),
    backup = boolean(v.backup, child(path, "backup")),
    cookie = nullable(v.cookie, child(path, "cookie"), text, COOKIE_VALUE, 256, "a cookie value: letters, digits, . _ ~ : / = + @ -"),
  }
end

local UPSTREAM_FIELDS = { tenant = true, pool = true, algorithm = true, cookie = true, healthCheck = true, peers = true }

local function upstream(v, path)
  object(v, path, UPSTREAM_FIELDS)
  local peers, seen = {}, {}
  for i, p in ipairs(array(v.peers, child(path, "peers"), MAX_PEERS)) do
    local at = child(path, "peers") .. "[" .. (i - 1) .. "]"
    peers[i] = peer(p, at)
    if seen[peers[i].name] then
      fail(child(at, "name"), "must be unique in the upstream")
    end
    seen[peers[i].name] = true
  end
  -- Sorted by name, as the contract says, whatever order arrived: algorithms depend on the order.
  table.sort(peers, function(a, b)
    return a.name < b.name
  end)
  return {
    tenant = name(v.tenant, child(path, "tenant")),
    pool = name(v.pool, child(path, "pool")),
    algorithm = one_of(v.algorithm, child(path, "algorithm"), { "roundrobin", "leastconn", "source" }),
    cookie = nullable(v.cookie, child(path, "cookie"), text, COOKIE_NAME, 64, "a cookie name: a letter, then letters, digits, _ or -"),
    healthCheck = nullable(v.healthCheck, child(path, "healthCheck"), health_check),
    peers = peers,
  }
end

local function caps(v, path)
  object(v, path, { maxConnections = true, requestsPerSecond = true })
  return {
    maxConnections = integer(v.maxConnections, child(path, "maxConnections"), 0, 1e9),
    requestsPerSecond = number(v.requestsPerSecond, child(path, "requestsPerSecond"), 0, 1e9),
  }
end

local function versioned(v, path, value_check)
  object(v, path, { revision = true, hash = true, value = true })
  local revision = integer(v.revision, child(path, "revision"), 0, MAX_REVISION)
  local hash = text(v.hash, child(path, "hash"), HASH, 16, "16 hex characters")
  if #hash ~= 16 then
    fail(child(path, "hash"), "must be 16 hex characters")
  end
  if v.value == nil then
    fail(child(path, "value"), "is required")
  end
  return revision, hash, value_check(v.value, child(path, "value"))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local function entries(push, field, kind, value_check, plan)
  local held = record(push[field], field)
  -- In name order, so that the first bad field reported is the same on every run.
  for _, entry_name in ipairs(sorted_keys(held)) do
    local v = held[entry_name]
    local path = field .. "." .. entry_name
    name(entry_name, path)
    local revision, hash, value = versioned(v, path, value_check)
    local json = cjson.encode(value)
    if json == nil then
      fail(path, "cannot be encoded")
    end
    plan.entries[#plan.entries + 1] =
      { kind = kind, name = entry_name, label = path, revision = revision, hash = hash, json = json }
    plan.named[kind .. ":" .. entry_name] = true
    if revision > plan.revision then
      plan.revision = revision
    end
  end
end

local function removals(v, plan)
  object(v, "removed", { upstreams = true, caps = true, revision = true })
  local revision = integer(v.revision, "removed.revision", 0, MAX_REVISION)
  for field, kind in pairs({ upstreams = "u", caps = "c" }) do
    for i, n in ipairs(array(v[field], "removed." .. field, 1e6)) do
      name(n, "removed." .. field .. "[" .. (i - 1) .. "]")
      plan.removals[#plan.removals + 1] = { kind = kind, name = n, revision = revision, label = field .. "." .. n }
    end
  end
end

local function by_label(a, b)
  return a.label < b.label
end

--- A plan { complete, revision, entries, removals, named } for a valid push, or nil and the first
--- bad field { field, message }. `revision` is the push's own (an optional top-level field that
--- runtime-state.json carries) or its newest entry's: what a complete push removes up to.
function M.plan(push)
  local ok, result = pcall(function()
    object(push, "", { complete = true, upstreams = true, caps = true, removed = true, revision = true })
    local plan = {
      complete = boolean(push.complete, "complete"),
      revision = 0,
      entries = {},
      removals = {},
      named = {},
    }
    entries(push, "upstreams", "u", upstream, plan)
    entries(push, "caps", "c", caps, plan)
    if push.removed ~= nil and push.removed ~= cjson.null then
      removals(push.removed, plan)
    end
    if push.revision ~= nil and push.revision ~= cjson.null then
      plan.revision = integer(push.revision, "revision", 0, MAX_REVISION)
    end
    table.sort(plan.removals, by_label)
    return plan
  end)
  if ok then
    return result
  end
  if type(result) == "table" and result.field ~= nil then
    return nil, result
  end
  error(result, 0)
end

return M
