-- switchyard.caps: the tenant's runtime caps, enforced in each tenant server's access phase.
--
-- maxConnections counts the tenant's requests in flight on this node (all workers, in sy_live).
-- requestsPerSecond admits at most that many requests per sliding second: the window is estimated
-- from this and the previous whole second's counts, and only ADMITTED requests are counted, so a
-- tenant sending three times its cap still gets its cap (counting refused ones too would starve it).
--
-- A request over a cap is not refused at once: it waits, as HAProxy's excess connections wait in
-- its queue, up to QUEUE_S seconds for the rate and SLOT_QUEUE_S for an in-flight slot.
--
-- Over the rate cap it sleeps until the sliding window would admit it, computed from the window's
-- counts and spread by its place among the tenant's waiters so they do not all wake at once.
--
-- Over the connection cap it waits in its worker's FIFO queue for the tenant (an ngx.semaphore)
-- and costs nothing while it waits. A request of the tenant ending in the same worker hands its
-- slot straight to the first waiter, still counted; while the worker has waiters, one timer of its
-- own takes the slots freed in other workers (every POLL_S). A waiter is woken only to be admitted,
-- so a thousand of them cost no more than one: polling each of them cost a held-connection flood
-- ten thousand wakes a second, and its neighbours their latency. While a tenant has waiters for a
-- slot, its new requests queue behind them rather than take a freed slot.
--
-- A request that cannot be admitted in time is refused (503 over maxConnections; 429 with
-- Retry-After: 1 over requestsPerSecond), at once when its wait could not end in time or the tenant
-- already has MAX_WAITERS waiting on the node. Answering a flood's excess at once on a kept-alive
-- connection is what made a capped tenant's closed-loop client ask again at full speed and its
-- neighbours wait behind the refusals.
--
-- Caps are read from the state on every request and whenever a slot is handed over: a change
-- pushed by the rebalancer applies to the next request (and to the waiting ones), with no reload.
-- A tenant without a caps entry is not limited (it is still counted, for stats). A full sy_live
-- fails open. Requests admitted here are counted in flight per tenant and per VIP until stats.log()
-- calls leave(); a request waiting for the rate cap keeps the in-flight slot it already holds.
local semaphore = require "ngx.semaphore"
local counter = require "switchyard.counter"
local state = require "switchyard.state"

local live = ngx.shared.sy_live
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local floor = math.floor
local min = math.min
local max = math.max
local random = math.random

local _M = {}

-- A second's admitted count is read as "previous" through the next second, then expires.
local WINDOW_TTL = 3
-- The longest a request waits over a cap before it is refused. HAProxy's templates set no
-- `timeout queue`; one second is also the rate window, and leaves A's held flood (1 s) inside
-- wrk's 2-s timeout in bench:noisy.
local QUEUE_S = 1
_M.QUEUE_S = QUEUE_S
-- The longest a request waits for an in-flight slot. HAProxy leaves the connections over a
-- frontend's maxconn unaccepted in the kernel's queue for as long as their client waits; here a
-- waiter costs nothing (see above), so it waits long enough that a flood's closed-loop clients
-- mostly wait rather than reconnect: with one second, a 1,100-connection flood against a cap of
-- 78 was refused 950 times a second and its neighbours' p99 was 4.7x alone; with ten, 24 a second.
local SLOT_QUEUE_S = 10
_M.SLOT_QUEUE_S = SLOT_QUEUE_S
-- Requests waiting per tenant on the node (all workers); beyond it a request is refused at once,
-- so a flood cannot hold unlimited timers. For the rate cap, also no more than QUEUE_S seconds of
-- admissions: those behind them could not be admitted in time anyway.
local MAX_WAITERS = 1024
_M.MAX_WAITERS = MAX_WAITERS
-- How often a worker with waiters for an in-flight slot looks for slots freed in other workers:
-- the longest a freed slot stays unused (slots freed in the waiter's own worker pass at once).
local POLL_S = 0.005
-- No sleep is shorter than nginx's millisecond timers: ngx.sleep(0) would resume the request
-- before the worker updates its clock, so a wait due in under a millisecond would spin forever.
local SLEEP_MIN = 0.001

-- Sleeps `seconds` (at least SLEEP_MIN), never past `deadline`; answers false once the deadline
-- is too near to sleep at all.
local function sleep_until(seconds, deadline)
  local left = deadline - ngx_now()
  if left < SLEEP_MIN then
    return false
  end
  ngx_sleep(max(SLEEP_MIN, min(seconds, left)))
  return true
end

local function tenant_key(tenant)
  return "t|" .. tenant
end

local function vip_key(tenant, vip)
  return "v|" .. tenant .. "/" .. vip
end

local function window_key(tenant, second)
  return "r|" .. tenant .. "|" .. second
end

-- Requests waiting for the rate cap, and for an in-flight slot (two counts: a request queues for
-- a slot only while others wait for one, not while others wait for the rate).
local function waiters_key(tenant)
  return "w|" .. tenant
end

local function slot_waiters_key(tenant)
  return "s|" .. tenant
end

-- Admitted requests in the sliding second ending now: the previous second weighted by how much of
-- it the window still covers, plus this second.
local function estimate(previous, current, now, second)
  return previous * (1 - (now - second)) + current
end

-- Counts the request in this second's window unless that would exceed rps; answers whether it is
-- admitted and, when it is not, the seconds until the window would admit one more (nil: never).
local function admit_rate(tenant, rps)
  local now = ngx_now()
  local second = floor(now)
  local key = window_key(tenant, second)
  local current = counter.add(live, "sy_live", key, 1, WINDOW_TTL)
  if current == nil or rps == nil then
    return true -- a full sy_live fails open (counted as overflow); no cap, nothing to refuse
  end
  local previous = live:get(window_key(tenant, second - 1)) or 0
  local excess = estimate(previous, current, now, second) - rps
  if excess <= 0 then
    return true
  end
  live:incr(key, -1)
  if rps < 1 then
    return false, nil
  end
  -- The estimate falls at `previous` a second until this second ends ...
  local rest = 1 - (now - second)
  if previous > 0 and excess <= previous * rest then
    return false, excess / previous
  end
  -- ... then this second is the previous one, falling at what it admitted (current - 1, without
  -- this request, and more than rps - 1 here).
  local next_excess = current - rps
  if next_excess <= 0 then
    return false, rest
  end
  return false, rest + next_excess / (current - 1)
end

-- Counts the request among the waiters counted at `key`, within `bound`; answers its place
-- (1 = first), or nil when it must be refused at once (too many waiting, or no room in sy_live to
-- count it).
local function join(ctx, key, bound)
  if ctx.sy_waiting then
    return ctx.sy_place
  end
  local place = counter.add(live, "sy_live", key, 1)
  if place == nil then
    return nil
  end
  if place > bound then
    live:incr(key, -1)
    return nil
  end
  ctx.sy_waiting, ctx.sy_place = key, place
  return place
end

-- Ends the request's wait, if it waited (also from leave(), should the request end mid-wait).
local function quit(ctx)
  if ctx.sy_waiting then
    live:incr(ctx.sy_waiting, -1)
    ctx.sy_waiting, ctx.sy_place = nil, nil
  end
end

-- This worker's waiters for an in-flight slot: per tenant, a FIFO semaphore, the number waiting
-- on it, and how many of the slots handed over are uncounted (taken from a full sy_live).
local queues = {}
local polling = false

local function queue_of(tenant)
  local q = queues[tenant]
  if q == nil then
    q = { sem = semaphore.new(0), waiting = 0, uncounted = 0 }
    queues[tenant] = q
  end
  return q
end

-- Takes the tenant's free in-flight slots (counting each) and hands them to this worker's waiters,
-- first come first served, while both last.
local function hand_free_slots(tenant, q)
  local caps = state.caps(tenant)
  local tkey = tenant_key(tenant)
  while q.sem:count() < 0 do
    if caps ~= nil and (live:get(tkey) or 0) >= caps.maxConnections then
      return
    end
    local in_flight = counter.add(live, "sy_live", tkey, 1)
    if in_flight == nil then
      q.uncounted = q.uncounted + 1 -- a full sy_live fails open, as access() does
    elseif caps ~= nil and in_flight > caps.maxConnections then
      live:incr(tkey, -1) -- another worker took it first
      return
    end
    q.sem:post(1)
  end
end

-- Gives back a slot handed to a waiter that had timed out before it could take it (the post and
-- the timeout raced): counted in sy_live, held by no one.
local function reclaim(tenant, q)
  while q.sem:count() > 0 and q.sem:wait(0) do
    if q.uncounted > 0 then
      q.uncounted = q.uncounted - 1
    else
      live:incr(tenant_key(tenant), -1)
    end
  end
end

-- The worker's timer while it has waiters: hands them the slots freed in other workers. It goes on
-- in a worker that a reload retires, until its last waiter is admitted or refused: else the
-- old worker's waiters would get only the slots freed in that worker.
local function poll(premature)
  while not premature do
    local waiting = false
    for tenant, q in pairs(queues) do
      if q.waiting > 0 then
        waiting = true
        hand_free_slots(tenant, q)
      elseif q.sem:count() > 0 then
        reclaim(tenant, q)
      else
        queues[tenant] = nil
      end
    end
    if not waiting then
      break
    end
    ngx_sleep(POLL_S)
  end
  polling = false
end

-- The slot a waiter was woken with: true when it is counted in sy_live, nil when uncounted.
local function take_handed(q)
  if q.uncounted > 0 then
    q.uncounted = q.uncounted - 1
    return nil
  end
  return true
end

-- Waits in this worker's queue for one of the tenant's in-flight slots until `deadline`. Answers
-- true once admitted and counted, nil when admitted uncounted, false when none came in time.
local function wait_for_slot(ctx, tenant, deadline)
  if join(ctx, slot_waiters_key(tenant), MAX_WAITERS) == nil then
    return false
  end
  local q = queue_of(tenant)
  if not polling then
    polling = ngx.timer.at(0, poll) and true or false
  end
  q.waiting = q.waiting + 1
  ctx.sy_slot_queue = q -- leave() ends the wait should the client leave meanwhile (the wait is aborted)
  local ok = q.sem:wait(max(0, deadline - ngx_now()))
  q.waiting = q.waiting - 1
  ctx.sy_slot_queue = nil
  quit(ctx)
  if ok or (q.sem:count() > 0 and q.sem:wait(0)) then
    return take_handed(q)
  end
  return false
end

-- Passes an ending request's in-flight slot to this worker's first waiter for the tenant, if it
-- has one and the cap still allows it; answers whether it did.
local function hand_over(tenant, tkey)
  local q = queues[tenant]
  if q == nil or q.sem:count() >= 0 then
    return false
  end
  local caps = state.caps(tenant)
  if caps ~= nil and (live:get(tkey) or 0) > caps.maxConnections then
    return false -- the cap was lowered: this slot is no longer the tenant's to give
  end
  q.sem:post(1)
  return true
end

-- Waits until the sliding window admits the request (counting it) or `deadline` is too near for
-- it to; `delay` is admit_rate's first answer. Answers whether it was admitted.
local function wait_for_rate(ctx, tenant, rps, delay, deadline)
  local place = join(ctx, waiters_key(tenant), min(MAX_WAITERS, max(1, floor(rps * QUEUE_S))))
  if place == nil then
    return false
  end
  while true do
    local now = ngx_now()
    if delay == nil or now + delay > deadline then
      return false -- could not be admitted in time: refused now rather than after a wait for nothing
    end
    -- Waiters ahead of this one are admitted first, in expectation: spread over their share of the rate.
    if not sleep_until(delay + random() * min(place / rps, QUEUE_S), deadline) then
      return false
    end
    local caps = state.caps(tenant)
    rps = caps and caps.requestsPerSecond
    local admitted
    admitted, delay = admit_rate(tenant, rps)
    if admitted then
      return true
    end
  end
end

local function refuse_connection(ctx)
  ctx.sy_refused = true
  return ngx.exit(503)
end

local function deny_rate(ctx)
  ctx.sy_denied = true
  -- HAProxy's answer, so a client reads the same refusal from both proxies and knows when to retry.
  ngx.status = 429
  ngx.header["Content-Type"] = "text/plain"
  ngx.header["Retry-After"] = "1"
  ngx.print("request rate cap reached")
  return ngx.exit(ngx.HTTP_OK)
end

--- access_by_lua: admits the request, after a wait of up to SLOT_QUEUE_S for an in-flight slot
--- and QUEUE_S for the rate, and counts it in flight; or refuses it (503 over maxConnections; 429
--- with Retry-After: 1 over requestsPerSecond).
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
  local queued = caps and (live:get(slot_waiters_key(tenant)) or 0) > 0
  if caps and in_flight and (in_flight > caps.maxConnections or queued) then
    -- Over the cap, or others are waiting for a slot: this one queues behind them.
    live:incr(tkey, -1)
    in_flight = wait_for_slot(ctx, tenant, ngx_now() + SLOT_QUEUE_S)
    if in_flight == false then
      quit(ctx)
      return refuse_connection(ctx)
    end
    caps = state.caps(tenant)
  end
  -- Held from here: leave() gives the slot back should the request end while waiting for the rate.
  ctx.sy_tenant_key = in_flight and tkey or nil
  ctx.sy_tenant = tenant
  local rps = caps and caps.requestsPerSecond
  local admitted, delay = admit_rate(tenant, rps)
  if not admitted and not wait_for_rate(ctx, tenant, rps, delay, ngx_now() + QUEUE_S) then
    quit(ctx)
    if in_flight then
      live:incr(tkey, -1)
    end
    ctx.sy_tenant_key = nil
    return deny_rate(ctx)
  end
  quit(ctx)
  local vkey = vip_key(tenant, ngx.var.sy_vip or "")
  ctx.sy_counted = true
  ctx.sy_vip_key = counter.add(live, "sy_live", vkey, 1) and vkey or nil
end

--- Ends what access() counted for this request (called from stats.log()), and its wait if it
--- ended while waiting.
function _M.leave()
  local ctx = ngx.ctx
  quit(ctx)
  if ctx.sy_slot_queue then
    ctx.sy_slot_queue.waiting = ctx.sy_slot_queue.waiting - 1
    ctx.sy_slot_queue = nil
  end
  ctx.sy_counted = nil
  if ctx.sy_tenant_key then
    if not hand_over(ctx.sy_tenant, ctx.sy_tenant_key) then
      live:incr(ctx.sy_tenant_key, -1)
    end
    ctx.sy_tenant_key = nil
  end
  if ctx.sy_vip_key then
    live:incr(ctx.sy_vip_key, -1)
    ctx.sy_vip_key = nil
  end
end

--- The tenant's requests in flight on this node.
function _M.active(tenant)
  return live:get(tenant_key(tenant)) or 0
end

--- The tenant's requests waiting over a cap on this node.
function _M.waiting(tenant)
  return (live:get(waiters_key(tenant)) or 0) + (live:get(slot_waiters_key(tenant)) or 0)
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
