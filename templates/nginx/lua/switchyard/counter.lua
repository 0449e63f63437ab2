-- switchyard.counter: counting in shared dictionaries without losing or evicting anything.
--
-- ngx.shared's incr(key, n, init) evicts the least recently used entries when the dictionary is
-- full: another VIP's counter would silently restart at zero (the stats poller would read a reset)
-- and an in-flight counter would go negative. add() creates a missing key with safe_add instead,
-- which refuses rather than evicts, and retries the incr when another worker created it first, so
-- no increment is lost. A refused write is counted once in an overflow counter per dictionary
-- ("!overflow|<dict>" in sy_stats, reported by stats.report()) instead of an error line per request.
local stats_dict = ngx.shared.sy_stats

local _M = {}

local OVERFLOW = "!overflow|"
_M.DICTIONARIES = { "sy_stats", "sy_live", "sy_health" }

-- The overflow counters exist before anything can fill the dictionary (first load in each worker).
for _, name in ipairs(_M.DICTIONARIES) do
  stats_dict:safe_add(OVERFLOW .. name, 0)
end

--- Counts one write the dictionary `name` had no room for.
function _M.overflowed(name)
  local key = OVERFLOW .. name
  if not stats_dict:incr(key, 1) then
    stats_dict:safe_add(key, 1)
  end
end

--- Adds n to key in dict (created at n, with ttl seconds to live if given); answers the new value,
--- or nil when the dictionary is full (counted as an overflow of `name`).
function _M.add(dict, name, key, n, ttl)
  local value, err = dict:incr(key, n)
  if value then
    return value
  end
  if err == "not found" then
    local ok, add_err = dict:safe_add(key, n, ttl)
    if ok then
      return n
    end
    if add_err == "exists" then
      value = dict:incr(key, n)
      if value then
        return value
      end
    end
  end
  _M.overflowed(name)
  return nil
end

--- Writes dropped so far, per dictionary.
function _M.overflow()
  local out = {}
  for _, name in ipairs(_M.DICTIONARIES) do
    out[name] = stats_dict:get(OVERFLOW .. name) or 0
  end
  return out
end

return _M
