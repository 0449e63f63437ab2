-- switchyard.admin: the content handler of the node's runtime channel (the mTLS server block),
-- speaking the wire protocol of src/domain/nginx-runtime.ts:
--   GET  /switchyard/v1/state  → HeldState
--   POST /switchyard/v1/state  StatePush → PushReply (507 with the reply when an entry did not fit)
--   GET  /switchyard/v1/stats  → NginxStats, from switchyard.stats (501 while that is not shipped)
-- Errors are JSON, `{"error":{"field":...,"message":...}}`, naming the field where there is one.
-- nginx already refuses a client without a certificate from the control plane's CA
-- (`ssl_verify_client on`); this refuses again unless the verification succeeded, so a server
-- block written without it still cannot open the channel.

local cjson = require("cjson.safe")
local state = require("switchyard.state")

local M = {}

local STATE = "/switchyard/v1/state"
local STATS = "/switchyard/v1/stats"

-- Its own instance, so no setting another module makes changes these replies. Debian's lua-cjson
-- prints 14 significant digits at most: integers are exact below 10^14.
local json = cjson.new()

local max_body = 64 * 1024 * 1024

--- Sets the largest push body accepted (bytes); nginx's client_max_body_size must allow it too.
function M.configure(opts)
  if opts and opts.maxBodyBytes then
    max_body = opts.maxBodyBytes
  end
end

local function send(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(body)
end

local function fail(status, field, message)
  send(status, json.encode({ error = { field = field or cjson.null, message = message } }))
end

-- lua-cjson writes an empty table as {}; the reply's lists must read as lists.
local function list(items)
  return #items == 0 and "[]" or json.encode(items)
end

local function reply_json(reply, extra)
  return '{"applied":' .. string.format("%d", reply.applied) .. ',"stale":' .. list(reply.stale) .. ',"failed":'
    .. list(reply.failed) .. (extra or "") .. "}"
end

local function read_body()
  local declared = tonumber(ngx.var.http_content_length or "")
  if declared ~= nil and declared > max_body then
    return nil, 413, "must be at most " .. max_body .. " bytes"
  end
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data == nil then
    -- Larger than client_body_buffer_size: nginx kept it in a file.
    local path = ngx.req.get_body_file()
    if path ~= nil then
      local f = io.open(path, "rb")
      if f ~= nil then
        data = f:read("*a")
        f:close()
      end
    end
  end
  if data == nil or data == "" then
    return nil, 400, "must be a StatePush (JSON)"
  end
  if #data > max_body then
    return nil, 413, "must be at most " .. max_body .. " bytes"
  end
  return data
end

local function push()
  local data, status, message = read_body()
  if data == nil then
    return fail(status, "body", message)
  end
  local decoded, decode_error = json.decode(data)
  if decoded == nil then
    return fail(400, "body", "is not JSON: " .. tostring(decode_error))
  end
  local reply, bad, err = state.apply(decoded)
  if reply == nil then
    if bad ~= nil then
      return fail(400, bad.field, bad.message)
    end
    return fail(503, nil, err)
  end
  ngx.log(ngx.INFO, "switchyard: push applied ", reply.applied, ", stale ", #reply.stale, ", failed ", #reply.failed)
  if #reply.failed > 0 then
    local first = reply.failed[1]
    local error = ',"error":' .. json.encode({ field = first.key, message = first.error })
    return send(507, reply_json(reply, error))
  end
  send(200, reply_json(reply))
end

local function stats()
  local ok, mod = pcall(require, "switchyard.stats")
  if not ok then
    if tostring(mod):find("module 'switchyard.stats' not found", 1, true) then
      return fail(501, nil, "this node's module has no stats")
    end
    ngx.log(ngx.ERR, "switchyard.stats failed to load: ", mod)
    return fail(500, nil, "stats failed to load")
  end
  local done, report = pcall(mod.report)
  if not done or type(report) ~= "table" then
    ngx.log(ngx.ERR, "switchyard.stats.report failed: ", report)
    return fail(500, nil, "stats failed")
  end
  send(200, json.encode(report))
end

local ROUTES = {
  [STATE] = {
    GET = function()
      send(200, json.encode(state.held()))
    end,
    POST = push,
  },
  [STATS] = { GET = stats },
}

--- content_by_lua for `location /switchyard/v1/` of the runtime channel's server.
function M.handle()
  if ngx.var.ssl_client_verify ~= "SUCCESS" then
    return fail(403, nil, "a client certificate from the control plane's CA is required")
  end
  local route = ROUTES[ngx.var.uri]
  if route == nil then
    return fail(404, nil, "no such path: " .. ngx.var.uri)
  end
  local method = ngx.req.get_method()
  local handler = route[method]
  if handler == nil then
    local allowed = {}
    for m in pairs(route) do
      allowed[#allowed + 1] = m
    end
    table.sort(allowed)
    ngx.header["Allow"] = table.concat(allowed, ", ")
    return fail(405, "method", method .. " is not allowed here")
  end
  return handler()
end

return M
