-- switchyard.stats: per-VIP, per-upstream and per-peer counters, and the NginxStats report.
--
-- log() runs at the http level for every request of a tenant server (requests without
-- $sy_tenant, such as the runtime channel's, are skipped). It ends what caps.access() and picked()
-- counted in flight and adds the request to its VIP (`<tenant>/<vip>`), and, when the balancer
-- chose a peer, to its upstream and `<upstream>/<peer>`: requests, status class, 429 denied and
-- 503 refused by the caps, bytes in ($request_length) and out ($bytes_sent), request time in ms.
-- Counters are sy_stats entries "<field>|<object>", created only when first needed, never evicted
-- (switchyard.counter); they survive reloads, so they are monotonic since the dictionary was made.
-- VIPs are not in the runtime state, so each is registered once in an index the report walks
-- ("!vips", "!vip|<n>"); upstreams and peers are walked from the state, so a peer appears (with its
-- health) as soon as it is in the state and leaves the report when it leaves the state.
local caps = require "switchyard.caps"
local counter = require "switchyard.counter"
local health = require "switchyard.health"
local state = require "switchyard.state"
local null = require("cjson.safe").null

local stats = ngx.shared.sy_stats
local live = ngx.shared.sy_live
local floor = math.floor

local _M = {}

local CLASS = { [2] = "2", [3] = "3", [4] = "4", [5] = "5" }

local FIELDS = {
  requests = "n",
  responses2xx = "2",
  responses3xx = "3",
  responses4xx = "4",
  responses5xx = "5",
  denied = "d",
  refused = "f",
  bytesIn = "i",
  bytesOut = "o",
  latencyMsSum = "l",
}

local function add(key, n)
  counter.add(stats, "sy_stats", key, n)
end

local function count(object, class, denied, refused, bytes_in, bytes_out, ms)
  add("n|" .. object, 1)
  if class then
    add(class .. "|" .. object, 1)
  end
  if denied then
    add("d|" .. object, 1)
  end
  if refused then
    add("f|" .. object, 1)
  end
  if bytes_in > 0 then
    add("i|" .. object, bytes_in)
  end
  if bytes_out > 0 then
    add("o|" .. object, bytes_out)
  end
  if ms > 0 then
    add("l|" .. object, ms)
  end
end

-- VIPs this worker knows are in the index.
local registered = {}

local function register(vip)
  if registered[vip] then
    return
  end
  local marker = "o|" .. vip
  local ok, err = stats:safe_add(marker, true)
  if ok then
    local index = counter.add(stats, "sy_stats", "!vips", 1)
    if not index or not stats:safe_set("!vip|" .. index, vip) then
      stats:delete(marker) -- a later request tries again
      if index then
        counter.overflowed("sy_stats")
      end
      return
    end
  elseif err ~= "exists" then
    counter.overflowed("sy_stats")
    return
  end
  registered[vip] = true
end

--- balancer_by_lua, on every try: records the chosen peer for log() and counts it in flight (a
--- retry moves the request from the peer that failed to the new one).
function _M.picked(upstream, peer)
  local ctx = ngx.ctx
  if ctx.sy_live_upstream == nil then
    local ukey = "u|" .. upstream
    ctx.sy_live_upstream = counter.add(live, "sy_live", ukey, 1) and ukey or false
  end
  if ctx.sy_live_peer then
    live:incr(ctx.sy_live_peer, -1)
  end
  local pkey = "p|" .. upstream .. "/" .. peer
  ctx.sy_live_peer = counter.add(live, "sy_live", pkey, 1) and pkey or nil
  ctx.sy_upstream = upstream
  ctx.sy_peer = peer
end

--- The peer's requests in flight on this node (all workers), as counted by picked().
function _M.peer_active(upstream, peer)
  return live:get("p|" .. upstream .. "/" .. peer) or 0
end

--- log_by_lua at the http level.
function _M.log()
  local var = ngx.var
  local tenant = var.sy_tenant
  if tenant == nil or tenant == "" then
    return
  end
  local ctx = ngx.ctx
  caps.leave()
  -- The balancer's leastconn count of this request's peer (loaded by then whenever it balanced).
  local balancer = package.loaded["switchyard.balancer"]
  if balancer and balancer.release then
    balancer.release()
  end
  if ctx.sy_live_upstream then
    live:incr(ctx.sy_live_upstream, -1)
  end
  if ctx.sy_live_peer then
    live:incr(ctx.sy_live_peer, -1)
  end
  ctx.sy_live_upstream, ctx.sy_live_peer = nil, nil

  local class = CLASS[floor(ngx.status / 100)]
  local bytes_in = tonumber(var.request_length) or 0
  local bytes_out = tonumber(var.bytes_sent) or 0
  local ms = floor((tonumber(var.request_time) or 0) * 1000 + 0.5)
  local denied, refused = ctx.sy_denied, ctx.sy_refused

  local vip = tenant .. "/" .. (var.sy_vip or "")
  register(vip)
  count("v:" .. vip, class, denied, refused, bytes_in, bytes_out, ms)
  local upstream = ctx.sy_upstream
  if upstream then
    count("u:" .. upstream, class, denied, refused, bytes_in, bytes_out, ms)
    if ctx.sy_peer then
      count("p:" .. upstream .. "/" .. ctx.sy_peer, class, denied, refused, bytes_in, bytes_out, ms)
    end
  end
end

local function counters(object)
  local out = {}
  for field, code in pairs(FIELDS) do
    out[field] = stats:get(code .. "|" .. object) or 0
  end
  return out
end

--- GET /switchyard/v1/stats: an NginxStats table (cjson-encodable).
function _M.report()
  ngx.update_time()
  local vips, upstreams, peers, tenants = {}, {}, {}, {}
  for i = 1, stats:get("!vips") or 0 do
    local name = stats:get("!vip|" .. i)
    if name then
      local tenant, vip = name:match("^([^/]*)/(.*)$")
      local c = counters("v:" .. name)
      c.tenant, c.vip, c.active = tenant, vip, caps.vip_active(tenant, vip)
      vips[name] = c
      tenants[tenant] = true
    end
  end
  for _, name in ipairs(state.upstream_names()) do
    local u = state.upstream(name)
    if u then
      local c = counters("u:" .. name)
      c.tenant, c.pool, c.active = u.tenant, u.pool, live:get("u|" .. name) or 0
      upstreams[name] = c
      tenants[u.tenant] = true
      for _, p in ipairs(u.peers) do
        local object = name .. "/" .. p.name
        local pc = counters("p:" .. object)
        local verdict, last = health.peer_health(u.tenant, u.pool, p.name)
        pc.upstream, pc.peer, pc.active = name, p.name, _M.peer_active(name, p.name)
        pc.health, pc.lastCheck = verdict, last or null
        peers[object] = pc
      end
    end
  end
  local by_tenant = {}
  for tenant in pairs(tenants) do
    by_tenant[tenant] = { active = caps.active(tenant), requestsPerSecond = caps.rate(tenant) }
  end
  return {
    now = floor(ngx.now() * 1000),
    vips = vips,
    upstreams = upstreams,
    peers = peers,
    tenants = by_tenant,
    overflow = counter.overflow(),
  }
end

return _M
