-- Shared by the wrk scripts for etcd's JSON gateway (tests/bench/compare.sh).
-- Keys are "key000000".."key099999" and values 256 bytes, both base64 as
-- the gateway wants them.
local M = {}

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

function M.b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

M.nkeys = tonumber(os.getenv("BENCH_KEYS") or "100000")
M.vsize = tonumber(os.getenv("BENCH_VALUE_SIZE") or "256")

-- Precomputed once per thread: base64 of every key, one base64 value.
function M.init()
  M.keys = {}
  for i = 0, M.nkeys - 1 do M.keys[i] = M.b64(string.format("key%06d", i)) end
  M.value = M.b64(string.rep("v", M.vsize))
end

-- One machine-readable line for compare.sh.
function M.done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write +
               summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT ops_per_sec=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, errs))
end

return M
