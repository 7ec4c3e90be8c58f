-- wrk script: random durable puts (POST /v3/kv/put) against etcd's gateway.
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("etcd_common")
c.init()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local k = c.keys[math.random(0, c.nkeys - 1)]
  return wrk.format(nil, "/v3/kv/put", nil, '{"key":"' .. k .. '","value":"' .. c.value .. '"}')
end

done = c.done
