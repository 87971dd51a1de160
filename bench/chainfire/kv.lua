-- kv.lua - wrk script for bench/chainfire: one request per call against
-- chainfire's REST API or etcd's v3 JSON gateway, on a key drawn at random
-- from the file kv.py wrote, so both stores see the same keys and value.
-- Environment: BENCH_SYSTEM (chainfire | etcd), BENCH_OP (put | get |
-- sget, a serializable get), BENCH_KEYS (the key file), BENCH_TOKEN
-- (chainfire only: an IAM bearer token).
local system = assert(os.getenv("BENCH_SYSTEM"), "BENCH_SYSTEM unset")
local op = assert(os.getenv("BENCH_OP"), "BENCH_OP unset")
local path = assert(os.getenv("BENCH_KEYS"), "BENCH_KEYS unset")
assert(system == "chainfire" or system == "etcd", "BENCH_SYSTEM: chainfire or etcd")
assert(op == "put" or op == "get" or op == "sget", "BENCH_OP: put, get or sget")

-- Column 1 of the key file is standard base64 (etcd), column 2 base64url
-- without padding (chainfire); line 1 holds the value the same way.
local col = (system == "etcd") and 1 or 2
local keys, value = {}, nil
for line in io.lines(path) do
    local f = {}
    for w in line:gmatch("%S+") do
        f[#f + 1] = w
    end
    if value == nil then
        value = f[col + 1]
    else
        keys[#keys + 1] = f[col]
    end
end
assert(value and #keys > 0, "empty key file " .. path)

local headers = { ["Content-Type"] = "application/json" }
if system == "chainfire" then
    headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN unset")
end

-- Each wrk thread has its own Lua state: give each its own random stream.
local next_id = 0
function setup(thread)
    next_id = next_id + 1
    thread:set("id", next_id)
end

function init()
    math.randomseed(os.time() * 1000 + (id or 0))
end

local function chainfire_request(k)
    if op == "put" then
        return wrk.format("PUT", "/api/v1/kv/" .. k, headers, '{"value":"' .. value .. '"}')
    elseif op == "get" then
        return wrk.format("GET", "/api/v1/kv/" .. k, headers)
    end
    return wrk.format("GET", "/api/v1/kv/" .. k .. "?serializable=true", headers)
end

local function etcd_request(k)
    if op == "put" then
        return wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. k .. '","value":"' .. value .. '"}')
    elseif op == "get" then
        return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. k .. '"}')
    end
    return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. k .. '","serializable":true}')
end

local build = (system == "etcd") and etcd_request or chainfire_request

function request()
    return build(keys[math.random(#keys)])
end
