-- switchyard.balancer: picks the peer for each request (balancer_by_lua) from the upstream's
-- runtime entry in sy_state, so members, weights and states change without a reload.
--
-- The rules are HAProxy's, so one member set gives one distribution on both proxies:
-- - roundrobin: smooth weighted round robin (nginx's own), per worker;
-- - leastconn: HAProxy's key (lb_fwlc.c), over requests in flight counted node-wide in sy_live
--   (body_filter() gives the count back as the answer's last byte is passed on, so a client's next
--   request never finds the peer still counted for one it has finished; release() in the log
--   phase covers requests that end otherwise): 0 for an idle
--   peer, else (in flight + 1) / weight; the lowest wins and equals take turns, the one picked
--   longest ago first, whatever their weights (so idle peers rotate evenly, as on HAProxy);
-- - source: the client address (its 32-bit words XORed, as HAProxy's map-based hash) modulo the
--   available peers' total weight, over their cumulative weights;
-- - cookie: a request whose cookie names an available peer (ready or drain, not maint, not down)
--   goes there; otherwise the algorithm picks and header_filter() sets the cookie HAProxy would.
-- Weight 0 and drain take no new requests except persistent ones; maint takes none; a peer the
-- health checks call down takes none; backup peers take requests only while no other peer can.
-- A failed attempt is retried (proxy_next_upstream) on a peer not tried yet. With nothing
-- available the answer is 503 (header_filter() turns nginx's "no live upstreams" 502 into it).
--
-- ngx.var.proxy_host cannot name the upstream here (nginx does not let Lua read it by name), so
-- the upstream comes from balance(name) or from `set $sy_upstream <name>;` in the location.
-- The request's choice is left in ngx.ctx for stats: sy_upstream and sy_peer (the peer's name).

local ngx_balancer = require("ngx.balancer")
local state = require("switchyard.state")

local bit = require("bit")

local M = {}

-- nginx's NGX_BUSY: the balancer found no live peer, and nginx answers as it does for its own
-- upstreams ("no live upstreams", 502, which header_filter() makes a 503). Any other exit code
-- is either a 500 or, for NGX_DECLINED, a retry loop.
local NGX_BUSY = -3

--- The body of that 503: HAProxy's, so a client sees the same answer from either kind of node.
local UNAVAILABLE_BODY = "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"

local health
do
  local ok, mod = pcall(require, "switchyard.health")
  if ok then
    health = mod
  elseif not tostring(mod):find("module 'switchyard.health' not found", 1, true) then
    ngx.log(ngx.ERR, "switchyard.health failed to load, no peer counts as down: ", mod)
  end
end

-- switchyard.stats counts each attempt's peer in flight (active per upstream and peer, for the
-- stats report); absent (a test without it), nothing is counted.
local stats
do
  local ok, mod = pcall(require, "switchyard.stats")
  if ok then
    stats = mod
  elseif not tostring(mod):find("module 'switchyard.stats' not found", 1, true) then
    ngx.log(ngx.ERR, "switchyard.stats failed to load, peers are not counted: ", mod)
  end
end

local function is_down(u, peer)
  return health ~= nil and health.is_down(u.tenant, u.pool, peer.name) == true
end

-- Per worker, per upstream: the entry's peers prepared once per change of the entry (host text
-- for set_current_peer, the leastconn counter's key), the round robin's current weights and
-- leastconn's turns (when each peer was last picked), which survive a change for the peers that stay.
local prepared = {}

local function prepare(name, u)
  local p = prepared[name]
  if p ~= nil and p.source == u then
    return p
  end
  local peers, current, picked = {}, {}, {}
  local old = p and p.current or {}
  local old_picked = p and p.picked or {}
  for i, peer in ipairs(u.peers) do
    peers[i] = {
      name = peer.name,
      host = peer.address:find(":", 1, true) and "[" .. peer.address .. "]" or peer.address,
      port = peer.port,
      weight = peer.weight,
      admin = peer.admin,
      backup = peer.backup,
      cookie = peer.cookie,
      live = "lc:" .. u.tenant .. "/" .. u.pool .. "/" .. peer.name,
    }
    current[peer.name] = old[peer.name] or 0
    picked[peer.name] = old_picked[peer.name] or 0
  end
  p = { source = u, peers = peers, current = current, picked = picked, turn = p and p.turn or 0 }
  prepared[name] = p
  return p
end

-- Smooth weighted round robin over `candidates` (nginx's ngx_http_upstream_get_peer).
local function round_robin(p, candidates)
  local current, total, best, best_weight = p.current, 0, nil, nil
  for _, peer in ipairs(candidates) do
    local w = current[peer.name] + peer.weight
    current[peer.name] = w
    total = total + peer.weight
    if best == nil or w > best_weight then
      best, best_weight = peer, w
    end
  end
  current[best.name] = best_weight - total
  return best
end

-- Whether a peer with `n` in flight and weight `w` goes before one with `bn` and `bw` (-1), after
-- it (1), or is its equal (0), by HAProxy's key: 0 when idle, else (n + 1) / w (compared without dividing).
local function compare_load(n, w, bn, bw)
  if n == 0 or bn == 0 then
    return (n == 0 and 0 or 1) - (bn == 0 and 0 or 1)
  end
  local a, b = (n + 1) * bw, (bn + 1) * w
  return a < b and -1 or (a > b and 1 or 0)
end

local function least_conn(p, candidates)
  local live, picked = ngx.shared.sy_live, p.picked
  local best, best_n
  for _, peer in ipairs(candidates) do
    local n = math.max(live:get(peer.live) or 0, 0)
    local order = best == nil and -1 or compare_load(n, peer.weight, best_n, best.weight)
    if order < 0 or (order == 0 and picked[peer.name] < picked[best.name]) then
      best, best_n = peer, n
    end
  end
  p.turn = p.turn + 1
  picked[best.name] = p.turn
  return best
end

local function address_hash()
  local addr = ngx.var.binary_remote_addr or ""
  local h = 0
  for i = 1, #addr - 3, 4 do
    local a, b, c, d = addr:byte(i, i + 3)
    h = bit.bxor(h, bit.bor(bit.lshift(a, 24), bit.lshift(b, 16), bit.lshift(c, 8), d))
  end
  return h < 0 and h + 4294967296 or h
end

local function source(candidates)
  local total = 0
  for _, peer in ipairs(candidates) do
    total = total + peer.weight
  end
  local at = address_hash() % total
  for _, peer in ipairs(candidates) do
    at = at - peer.weight
    if at < 0 then
      return peer
    end
  end
  return candidates[#candidates]
end

local ALGORITHMS = { roundrobin = round_robin, leastconn = least_conn }

local function takes_new(u, peer)
  return peer.admin == "ready" and peer.weight > 0 and not is_down(u, peer)
end

-- The peers a new request may go to: the non-backup ones that take new requests, else (there
-- are none, or all were tried) the backup ones; and how many untried ones are left in all.
local function candidates(u, p, tried)
  local primary, backup = {}, {}
  for _, peer in ipairs(p.peers) do
    if takes_new(u, peer) then
      if not tried[peer.name] then
        local into = peer.backup and backup or primary
        into[#into + 1] = peer
      end
    end
  end
  if #primary > 0 then
    return primary, #primary + #backup
  end
  return backup, #backup
end

local function persistent(u, p, ctx, tried)
  local value = ngx.var["cookie_" .. u.cookie]
  ctx.sy_cookie_value = value
  if value == nil then
    return nil
  end
  for _, peer in ipairs(p.peers) do
    if peer.cookie == value then
      if peer.admin ~= "maint" and not tried[peer.name] and not is_down(u, peer) then
        return peer
      end
      return nil
    end
  end
  return nil
end

local function pick(u, p, ctx, tried)
  if u.cookie ~= nil and ctx.sy_peer == nil then
    local peer = persistent(u, p, ctx, tried)
    if peer ~= nil then
      return peer, 1
    end
  end
  local list, count = candidates(u, p, tried)
  if #list == 0 then
    return nil, 0
  end
  if u.algorithm == "source" then
    return source(list), count
  end
  return (ALGORITHMS[u.algorithm] or round_robin)(p, list), count
end

--- Gives back the leastconn count of the request's current peer: call when the request ends
--- (log phase; switchyard.stats.log() does) and before a retry picks another peer.
function M.release()
  local ctx = ngx.ctx
  local key = ctx.sy_live_key
  if key ~= nil then
    ctx.sy_live_key = nil
    ngx.shared.sy_live:incr(key, -1, 0)
  end
end

local function unavailable(ctx, why)
  if why ~= nil then
    ngx.log(ngx.ERR, why)
  end
  -- A first attempt with nothing to try is the 503; retries that ran out stay nginx's 502.
  ctx.sy_unavailable = ctx.sy_peer == nil
  return ngx.exit(NGX_BUSY)
end

--- balancer_by_lua: sets the peer of this attempt. `name` is the upstream's name, or nil to read
--- it from $sy_upstream.
function M.balance(name)
  local ctx = ngx.ctx
  name = name or ctx.sy_upstream or ngx.var.sy_upstream
  if name == nil then
    return unavailable(ctx, "switchyard: no upstream name (balance(name) or $sy_upstream)")
  end
  ctx.sy_upstream = name
  local u = state.upstream(name)
  if u == nil then
    return unavailable(ctx, "switchyard: no runtime entry for upstream " .. name)
  end
  local p = prepare(name, u)
  local tried = ctx.sy_tried
  if ctx.sy_peer ~= nil then
    -- A retry: the last attempt failed on this peer.
    tried = tried or {}
    tried[ctx.sy_peer] = true
    ctx.sy_tried = tried
    M.release()
  end
  local peer, count = pick(u, p, ctx, tried or {})
  if peer == nil then
    return unavailable(ctx)
  end
  local ok, err = ngx_balancer.set_current_peer(peer.host, peer.port)
  if not ok then
    return unavailable(ctx, "switchyard: set_current_peer " .. peer.host .. ": " .. tostring(err))
  end
  if ctx.sy_peer == nil and count > 1 then
    ngx_balancer.set_more_tries(count - 1)
  end
  if stats ~= nil then
    stats.picked(name, peer.name)
  end
  ctx.sy_peer = peer.name
  ctx.sy_cookie_name = u.cookie
  ctx.sy_peer_cookie = peer.cookie
  if u.algorithm == "leastconn" then
    ngx.shared.sy_live:incr(peer.live, 1, 0)
    ctx.sy_live_key = peer.live
  end
end

--- body_filter_by_lua: the peer has answered once its last buffer passes here, which is before
--- the client can have it all; the leastconn count is given back now rather than in the log phase,
--- which runs after the client may already have sent its next request to another worker.
function M.body_filter()
  local ctx = ngx.ctx
  if ctx.sy_unavailable then
    -- nginx chose its 502 page before header_filter() made the answer a 503: the body says so too.
    ngx.arg[1] = ctx.sy_body_sent and "" or UNAVAILABLE_BODY
    ctx.sy_body_sent = true
  end
  if ngx.arg[2] then
    M.release()
  end
end

--- header_filter_by_lua: the persistence cookie when the request's cookie did not name the peer
--- that answered (`<name>=<value>; path=/`, and `Cache-Control: private` on a response without
--- one, as HAProxy's `cookie ... insert indirect nocache` does); and 503 when nothing was available.
function M.header_filter()
  local ctx = ngx.ctx
  if ctx.sy_unavailable then
    ngx.status = ngx.HTTP_SERVICE_UNAVAILABLE
    -- body_filter() sends UNAVAILABLE_BODY in place of nginx's 502 page.
    ngx.header.content_length = #UNAVAILABLE_BODY
    ngx.header.content_type = "text/html"
    ngx.header["Cache-Control"] = "no-cache"
    return
  end
  local name, value = ctx.sy_cookie_name, ctx.sy_peer_cookie
  if name == nil or value == nil or value == ctx.sy_cookie_value then
    return
  end
  local cookie = name .. "=" .. value .. "; path=/"
  local existing = ngx.header["Set-Cookie"]
  if existing == nil then
    ngx.header["Set-Cookie"] = cookie
  elseif type(existing) == "table" then
    existing[#existing + 1] = cookie
    ngx.header["Set-Cookie"] = existing
  else
    ngx.header["Set-Cookie"] = { existing, cookie }
  end
  if ngx.header["Cache-Control"] == nil then
    ngx.header["Cache-Control"] = "private"
  end
end

return M
