-- switchyard.health: active health checks, run once per node, and the verdicts the balancer reads.
--
-- Debian's nginx has no privileged agent process (ngx.process.enable_privileged_agent() needs
-- OpenResty's patch to the nginx core), so start() runs in every worker and the workers elect
-- one checker with a lease in sy_locks: the holder renews it on every tick; a checker that dies
-- or stops renewing is replaced after LEASE_TTL; one that is exiting (a reload, a shutdown)
-- releases it on its way out so a worker of the new generation takes over within FOLLOW_EVERY.
-- The checker keeps a list of (tenant, pool, peer) targets rebuilt from the state every
-- REFRESH_EVERY (several upstreams of one pool share one check), runs each target's check when its
-- interval is due (each in its own timer, at most MAX_RUNNING at once), counts rise and fall, and
-- writes a verdict to sy_health only when it changes: "U <last check>" or "D <last check>".
-- is_down() is one dictionary get. A peer that has not been checked yet has no entry and counts as
-- up (as HAProxy's servers start up); removed peers and peers whose check was removed lose theirs.
local counter = require "switchyard.counter"
local state = require "switchyard.state"

local health = ngx.shared.sy_health
local locks = ngx.shared.sy_locks
local byte, sub, match = string.byte, string.sub, string.match
local ngx_now, timer_at, exiting = ngx.now, ngx.timer.at, ngx.worker.exiting
local log, ERR, WARN = ngx.log, ngx.ERR, ngx.WARN

local _M = {}

local LEASE_KEY = "health:checker"
local LEASE_TTL = 5 -- s
local FOLLOW_EVERY = 0.25 -- s between a non-checker's attempts to take the lease
local REFRESH_EVERY = 1 -- s between rebuilds of the target list from the state
local MAX_SLEEP = 0.25 -- s: the checker renews its lease and looks for due checks at least this often
local MIN_SLEEP = 0.01
local BUSY_SLEEP = 0.05
local MAX_RUNNING = 64
local DOWN = 68 -- "D"

local function key(tenant, pool, peer)
  return tenant .. "/" .. pool .. "/" .. peer
end

--- True when the peer's checks took it down (one dictionary get; no entry: not checked, so up).
function _M.is_down(tenant, pool, peer)
  local verdict = health:get(key(tenant, pool, peer))
  return verdict ~= nil and byte(verdict, 1) == DOWN
end

--- "up", "down" or "unchecked", and the last check's outcome in words ("HTTP 200", "timeout") or nil.
function _M.peer_health(tenant, pool, peer)
  local verdict = health:get(key(tenant, pool, peer))
  if verdict == nil then
    return "unchecked", nil
  end
  return byte(verdict, 1) == DOWN and "down" or "up", sub(verdict, 3)
end

--- The pid of the worker running the checks, or nil.
function _M.checker()
  return locks:get(LEASE_KEY)
end

-- The checker's own state (only the lease holder has targets). `me` is set by start(): a module
-- first required in init_by_lua would otherwise hold the master's pid in every worker.
local me
local leading = false
local targets = {} -- by key
local heap = {} -- targets by due time (a binary min-heap)
local running = 0
local generation = 0
local next_refresh = 0

local function heap_push(t)
  heap[#heap + 1] = t
  local i = #heap
  while i > 1 do
    local parent = math.floor(i / 2)
    if heap[parent].due <= heap[i].due then
      break
    end
    heap[parent], heap[i] = heap[i], heap[parent]
    i = parent
  end
end

local function heap_pop()
  local top = heap[1]
  local last = heap[#heap]
  heap[#heap] = nil
  if #heap > 0 then
    heap[1] = last
    local i, n = 1, #heap
    while true do
      local l, r, smallest = 2 * i, 2 * i + 1, i
      if l <= n and heap[l].due < heap[smallest].due then
        smallest = l
      end
      if r <= n and heap[r].due < heap[smallest].due then
        smallest = r
      end
      if smallest == i then
        break
      end
      heap[i], heap[smallest] = heap[smallest], heap[i]
      i = smallest
    end
  end
  return top
end

-- The outcome of a failed socket step, in the words the stats report carries.
local function failure(err, step)
  if err == "timeout" or err == "connection refused" then
    return err
  end
  return step .. ": " .. tostring(err)
end

-- One check of one target: ok (boolean) and what it saw ("HTTP 200", "connected", "timeout").
local function probe(t)
  local check = t.check
  local deadline = ngx_now() + check.timeoutMs / 1000
  local function remaining()
    ngx.update_time()
    return math.max(1, math.floor((deadline - ngx_now()) * 1000))
  end
  local sock = ngx.socket.tcp()
  sock:settimeout(remaining())
  local ok, err = sock:connect(t.host, check.port ~= ngx.null and check.port or t.port)
  if not ok then
    return false, failure(err, "connect")
  end
  if check.type == "tcp" then
    sock:close()
    return true, "connected"
  end
  local host = check.host ~= ngx.null and check.host or nil
  if check.type == "https" then
    sock:settimeout(remaining())
    -- Members' certificates are not verified by the check (as HAProxy's `verify none` checks).
    ok, err = sock:sslhandshake(false, host, false)
    if not ok then
      sock:close()
      return false, failure(err, "TLS")
    end
  end
  sock:settimeout(remaining())
  ok, err = sock:send(
    "GET " .. check.path .. " HTTP/1.0\r\nHost: " .. (host or t.host) ..
    "\r\nUser-Agent: switchyard-health\r\nConnection: close\r\n\r\n")
  if not ok then
    sock:close()
    return false, failure(err, "send")
  end
  sock:settimeout(remaining())
  local line
  line, err = sock:receive("*l")
  sock:close()
  if not line then
    return false, failure(err, "receive")
  end
  local status = tonumber(match(line, "^HTTP/%d%.%d (%d%d%d)"))
  if not status then
    return false, "not an HTTP response"
  end
  for _, range in ipairs(check.expectedStatus) do
    if status >= range[1] and status <= range[2] then
      return true, "HTTP " .. status
    end
  end
  return false, "HTTP " .. status
end

-- Rise and fall: the verdict changes after `rise` successes in a row (down → up) or `fall`
-- failures in a row (up → down); the dictionary is written only when the text changes.
local function record(t, ok, seen)
  if ok then
    t.failures, t.successes = 0, t.successes + 1
    if t.down and t.successes >= t.check.rise then
      t.down = false
    end
  else
    t.successes, t.failures = 0, t.failures + 1
    if not t.down and t.failures >= t.check.fall then
      t.down = true
    end
  end
  local verdict = (t.down and "D " or "U ") .. seen
  if verdict ~= t.written then
    if health:safe_set(t.key, verdict) then
      t.written = verdict
    else
      counter.overflowed("sy_health")
    end
  end
end

local function run_check(premature, t)
  if not premature then
    local done, ok, seen = pcall(probe, t)
    if not done then
      log(ERR, "health check of ", t.key, " failed: ", ok)
      ok, seen = false, "check failed"
    end
    if leading and not t.removed then
      record(t, ok, seen)
    end
  end
  t.running = false
  running = running - 1
end

-- Rebuilds the targets from the state; targets no longer there stop and lose their verdict.
local function refresh(now)
  generation = generation + 1
  for _, name in ipairs(state.upstream_names()) do
    local u = state.upstream(name)
    local check = u and u.healthCheck
    if check and check ~= ngx.null then
      for _, peer in ipairs(u.peers) do
        local k = key(u.tenant, u.pool, peer.name)
        local t = targets[k]
        if t == nil then
          local verdict = health:get(k)
          t = {
            key = k,
            down = verdict ~= nil and byte(verdict, 1) == DOWN,
            written = verdict,
            successes = 0,
            failures = 0,
            -- Spread first checks over the interval so a start does not check everything at once.
            due = now + math.random() * check.intervalMs / 1000,
          }
          targets[k] = t
          heap_push(t)
        end
        if t.generation ~= generation then -- the first upstream of the pool (by state order) sets the check
          t.generation = generation
          t.check = check
          t.host = match(peer.address, ":") and "[" .. peer.address .. "]" or peer.address
          t.port = peer.port
        end
      end
    end
  end
  for k, t in pairs(targets) do
    if t.generation ~= generation then
      t.removed = true
      targets[k] = nil
      health:delete(k)
    end
  end
end

-- Verdicts left by an earlier checker for peers that are not targets any more.
local function sweep()
  for _, k in ipairs(health:get_keys(0)) do
    if targets[k] == nil then
      health:delete(k)
    end
  end
end

local function resign()
  leading = false
  for _, t in pairs(targets) do
    t.removed = true
  end
  targets, heap = {}, {}
end

-- One tick: keep or take the lease, then start the checks that are due. Answers the seconds to sleep.
local function step()
  local now = ngx_now()
  if leading then
    if locks:get(LEASE_KEY) ~= me then
      log(WARN, "health checker lease lost by worker ", me)
      resign()
      return FOLLOW_EVERY
    end
    locks:set(LEASE_KEY, me, LEASE_TTL)
  else
    if not locks:add(LEASE_KEY, me, LEASE_TTL) then
      return FOLLOW_EVERY
    end
    leading = true
    next_refresh = 0
  end
  if now >= next_refresh then
    local first = next_refresh == 0
    refresh(now)
    if first then
      sweep()
    end
    next_refresh = now + REFRESH_EVERY
  end
  while heap[1] and running < MAX_RUNNING do
    local t = heap[1]
    if t.removed then
      heap_pop()
    elseif t.due > now then
      break
    else
      heap_pop()
      local interval = t.check.intervalMs / 1000
      -- On schedule while it keeps up; after a stall, one interval from now rather than a burst.
      t.due = t.due + interval > now and t.due + interval or now + interval
      if not t.running then
        local ok, err = timer_at(0, run_check, t)
        if ok then
          t.running = true
          running = running + 1
        else
          log(ERR, "health check of ", t.key, " not started: ", err)
        end
      end
      heap_push(t)
    end
  end
  if running >= MAX_RUNNING then
    return BUSY_SLEEP -- checks are due but MAX_RUNNING are still running
  end
  if heap[1] then
    return math.min(MAX_SLEEP, math.max(MIN_SLEEP, heap[1].due - now))
  end
  return MAX_SLEEP
end

local function tick(premature)
  if premature or exiting() then
    if leading and locks:get(LEASE_KEY) == me then
      locks:delete(LEASE_KEY) -- the next generation's worker takes over now, not after LEASE_TTL
    end
    resign()
    return
  end
  local ok, sleep = pcall(step)
  if not ok then
    log(ERR, "health checker: ", sleep)
    sleep = MAX_SLEEP
  end
  local started, err = timer_at(sleep, tick)
  if not started then
    log(ERR, "health checker stopped: ", err)
  end
end

--- init_worker_by_lua, in every worker: the workers elect one checker for the node.
function _M.start()
  me = ngx.worker.pid()
  local ok, err = timer_at(0, tick)
  if not ok then
    log(ERR, "health checker not started: ", err)
  end
  return ok, err
end

return _M
