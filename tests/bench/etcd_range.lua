-- wrk script: random single-key reads (POST /v3/kv/range) against etcd's gateway.
-- A response without "kvs" means the key was missing: it is counted and
-- reported (compare.sh adds it to the errors) so a read of nothing is never
-- mistaken for a fast read.
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("etcd_common")
local threads = {}

setup = function(thread) table.insert(threads, thread) end

init = function(args)
  c.init()
  missing = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  local k = c.keys[math.random(0, c.nkeys - 1)]
  return wrk.format(nil, "/v3/kv/range", nil, '{"key":"' .. k .. '"}')
end

response = function(status, headers, body)
  if status == 200 and not body:find('"kvs"', 1, true) then missing = missing + 1 end
end

done = function(summary, latency, requests)
  local m = 0
  for _, t in ipairs(threads) do m = m + (t:get("missing") or 0) end
  summary.errors.status = summary.errors.status + m
  c.done(summary, latency, requests)
end
