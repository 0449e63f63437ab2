-- switchyard.caps: the tenant's runtime caps, enforced in each tenant server's access phase.
--
-- maxConnections counts the tenant's requests in flight on this node (all workers, in sy_live);
-- one more is refused with 503 (HAProxy would queue it; NGINX has no queue). requestsPerSecond
-- admits at most that many requests per sliding second: the window is estimated from this and
-- the previous whole second's counts, and only ADMITTED requests are counted, so a tenant sending
-- three times its cap still gets its cap (counting refused ones too would starve it). Caps are read
-- from the state on every request: a change pushed by the rebalancer applies to the next request,
-- with no reload. A tenant without a caps entry is not limited (it is still counted, for stats).
-- Requests admitted here are counted in flight per tenant and per VIP until stats.log() calls leave().
local counter = require "switchyard.counter"
local state = require "switchyard.state"

local live = ngx.shared.sy_live
local ngx_now = ngx.now
local floor = math.floor

local _M = {}

-- A second's admitted count is read as "previous" through the next second, then expires.
local WINDOW_TTL = 3

local function tenant_key(tenant)
  return "t|" .. tenant
end

local function vip_key(tenant, vip)
  return "v|" .. tenant .. "/" .. vip
end

local function window_key(tenant, second)
  return "r|" .. tenant .. "|" .. second
end

-- Admitted requests in the sliding second ending now: the previous second weighted by how much of
-- it the window still covers, plus this second.
local function estimate(previous, current, now, second)
  return previous * (1 - (now - second)) + current
end

-- Counts the request in this second's window unless that would exceed rps; answers whether it is admitted.
local function admit_rate(tenant, rps)
  local now = ngx_now()
  local second = floor(now)
  local key = window_key(tenant, second)
  local current = counter.add(live, "sy_live", key, 1, WINDOW_TTL)
  if current == nil or rps == nil then
    return true -- a full sy_live fails open (counted as overflow); no cap, nothing to refuse
  end
  local previous = live:get(window_key(tenant, second - 1)) or 0
  if estimate(previous, current, now, second) > rps then
    live:incr(key, -1)
    return false
  end
  return true
end

--- access_by_lua: refuses the request (503 over maxConnections; 429 with Retry-After: 1 over requestsPerSecond) or counts it in flight.
function _M.access()
  local tenant = ngx.var.sy_tenant
  if tenant == nil or tenant == "" then
    return
  end
  local ctx = ngx.ctx
  if ctx.sy_counted then
    return -- access ran again for this request (a second access phase): counted once
  end
  local caps = state.caps(tenant)
  local tkey = tenant_key(tenant)
  local in_flight = counter.add(live, "sy_live", tkey, 1)
  if caps and in_flight and in_flight > caps.maxConnections then
    live:incr(tkey, -1)
    ctx.sy_refused = true
    return ngx.exit(503)
  end
  if not admit_rate(tenant, caps and caps.requestsPerSecond) then
    if in_flight then
      live:incr(tkey, -1)
    end
    ctx.sy_denied = true
    -- HAProxy's answer, so a client reads the same refusal from both proxies and knows when to retry.
    ngx.status = 429
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Retry-After"] = "1"
    ngx.print("request rate cap reached")
    return ngx.exit(ngx.HTTP_OK)
  end
  local vkey = vip_key(tenant, ngx.var.sy_vip or "")
  ctx.sy_counted = true
  ctx.sy_tenant_key = in_flight and tkey or nil
  ctx.sy_vip_key = counter.add(live, "sy_live", vkey, 1) and vkey or nil
end

--- Ends what access() counted for this request (called from stats.log()).
function _M.leave()
  local ctx = ngx.ctx
  if not ctx.sy_counted then
    return
  end
  ctx.sy_counted = nil
  if ctx.sy_tenant_key then
    live:incr(ctx.sy_tenant_key, -1)
  end
  if ctx.sy_vip_key then
    live:incr(ctx.sy_vip_key, -1)
  end
end

--- The tenant's requests in flight on this node.
function _M.active(tenant)
  return live:get(tenant_key(tenant)) or 0
end

--- The VIP's admitted requests in flight on this node.
function _M.vip_active(tenant, vip)
  return live:get(vip_key(tenant, vip)) or 0
end

--- The tenant's admitted requests in the sliding second ending now.
function _M.rate(tenant)
  local now = ngx_now()
  local second = floor(now)
  local previous = live:get(window_key(tenant, second - 1)) or 0
  local current = live:get(window_key(tenant, second)) or 0
  return estimate(previous, current, now, second)
end

return _M
